package wxauth

import (
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestLimiter(t *testing.T) {
	clock := newFakeClock()
	l := newLimiter(&LoginLimit{Events: 2, Window: caddy.Duration(time.Minute)})
	steps := []struct {
		ip      string
		advance time.Duration
		ok      bool
		wait    time.Duration
	}{
		{"a", 0, true, 0},
		{"a", 10 * time.Second, true, 0},
		{"a", 0, false, 50 * time.Second},
		{"b", 0, true, 0}, // addresses are counted apart
		{"a", 49 * time.Second, false, time.Second},
		{"a", time.Second, true, 0}, // a new window
		{"a", 0, true, 0},
		{"a", 0, false, time.Minute},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		ok, wait := l.allow(s.ip, clock.Now())
		if ok != s.ok || wait != s.wait {
			t.Fatalf("step %d (%s): allow = %v, %v; want %v, %v", i, s.ip, ok, wait, s.ok, s.wait)
		}
	}
	if newLimiter(nil) != nil {
		t.Fatal("no limit should mean no limiter")
	}
}

// A full limiter forgets the address whose window began longest ago, one
// at a time: the others keep their counts.
func TestLimiterEvictsOldest(t *testing.T) {
	clock := newFakeClock()
	l := newLimiter(&LoginLimit{Events: 1, Window: caddy.Duration(time.Hour)})
	l.max = 3
	for i := range 3 {
		if ok, _ := l.allow("ip"+strconv.Itoa(i), clock.Now()); !ok {
			t.Fatal("first login refused")
		}
		clock.Advance(time.Second)
	}
	if ok, _ := l.allow("ip3", clock.Now()); !ok { // evicts ip0
		t.Fatal("a new address was refused")
	}
	for _, ip := range []string{"ip1", "ip2", "ip3"} {
		if ok, _ := l.allow(ip, clock.Now()); ok {
			t.Fatalf("%s lost its count", ip)
		}
	}
	if ok, _ := l.allow("ip0", clock.Now()); !ok {
		t.Fatal("the oldest address was not the one forgotten")
	}
	if len(l.ips) != 3 || l.order.Len() != 3 {
		t.Fatalf("%d addresses tracked, want 3", len(l.ips))
	}
}
