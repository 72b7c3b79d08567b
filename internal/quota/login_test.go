package quota

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/session/storetest"
)

func TestLimiter(t *testing.T) {
	clock := clock.NewFake()
	l := newLimiter(2, time.Minute)
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
	if newLimiter(0, time.Minute) != nil {
		t.Fatal("no limit should mean no limiter")
	}
}

// A full limiter forgets the address whose window began longest ago, one
// at a time: the others keep their counts.
func TestLimiterEvictsOldest(t *testing.T) {
	clock := clock.NewFake()
	l := newLimiter(1, time.Hour)
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

// Every IPv6 address of a /64 is one client; IPv4 addresses are counted one
// by one, an IPv4-mapped address as its IPv4 address; names are safe in a
// path-like key.
func TestClientNet(t *testing.T) {
	for _, c := range []struct{ ip, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2::1", "v6-20010db800010002"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "v6-20010db800010002"},
		{"2001:0db8:0001:0002:0:0:0:9", "v6-20010db800010002"},
		{"2001:db8:1:3::1", "v6-20010db800010003"},
		{"fe80::1%eth0", "v6-fe80000000000000"},
		{"::1", "v6-0000000000000000"},
		// Not an address: the first 128 bits of its SHA-256, as before.
		{"not an ip", "x-cb1fb3c75fc8be0750ebabe2759bb9e8"},
	} {
		if got := ClientNet(c.ip); got != c.want {
			t.Errorf("ClientNet(%q) = %q, want %q", c.ip, got, c.want)
		}
	}
	for _, ip := range []string{"", "not an ip", "../../etc", "2001:db8::/64"} {
		got := ClientNet(ip)
		if !strings.HasPrefix(got, "x-") || strings.ContainsAny(got, `:/\.`) || got == ClientNet("other") {
			t.Errorf("ClientNet(%q) = %q", ip, got)
		}
	}
}

// Instances sharing a store share one count, per client network.
func TestLoginLimitCountsInStore(t *testing.T) {
	clock := clock.NewFake()
	store := session.NewMemory()
	conf := Config{Store: store, Prefix: "wxauth/app", Limit: 3, Window: time.Minute, Timeout: time.Second, Now: clock.Now}
	a := NewLogin(conf)
	b := NewLogin(conf)
	steps := []struct {
		l       *Login
		net     string
		advance time.Duration
		wait    time.Duration
	}{
		{a, "v6-20010db800010002", 0, 0},
		{b, "v6-20010db800010002", 10 * time.Second, 0},
		{a, "v6-20010db800010002", 0, 0},
		{b, "v6-20010db800010002", 0, 50 * time.Second}, // the cluster's third
		{a, "v6-20010db800010003", 0, 0},                // another /64
		{a, "203.0.113.7", 0, 0},
		{b, "v6-20010db800010002", 50 * time.Second, 0}, // a new window
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		wait, err := s.l.Allow(context.Background(), s.net)
		if err != nil || wait != s.wait {
			t.Fatalf("step %d (%s): wait %v, %v; want %v", i, s.net, wait, err, s.wait)
		}
	}
	conf.Limit = 0
	if NewLogin(conf) != nil {
		t.Fatal("no limit should mean no limiter")
	}
}

// While the store fails, each instance counts in memory on its own, and
// says so with the store's error; back up, the store's count holds again.
func TestLoginLimitFallsBackToMemory(t *testing.T) {
	clock := clock.NewFake()
	store := &storetest.Failing{Store: session.NewMemory()}
	l := NewLogin(Config{Store: store, Prefix: "wxauth/app", Limit: 2, Window: time.Minute, Now: clock.Now})
	for i := range 2 {
		if wait, err := l.Allow(context.Background(), "v6-1"); wait != 0 || err != nil {
			t.Fatalf("login %d with the store up: %v, %v", i, wait, err)
		}
	}
	store.Down.Store(true)
	clock.Advance(10 * time.Second)
	for i := range 2 {
		if wait, err := l.Allow(context.Background(), "v6-2"); wait != 0 || err == nil {
			t.Fatalf("login %d with the store down: %v, %v", i, wait, err)
		}
	}
	if wait, err := l.Allow(context.Background(), "v6-2"); wait != time.Minute || err == nil {
		t.Fatalf("third login with the store down: %v, %v; want 1m and the store's error", wait, err)
	}
	store.Down.Store(false)
	if wait, err := l.Allow(context.Background(), "v6-1"); wait != 50*time.Second || err != nil {
		t.Fatalf("with the store back: %v, %v; want 50s", wait, err)
	}
}
