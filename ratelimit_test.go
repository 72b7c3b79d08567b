package wxauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxauth/caddy-wxauth/session"
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
	} {
		if got := clientNet(c.ip); got != c.want {
			t.Errorf("clientNet(%q) = %q, want %q", c.ip, got, c.want)
		}
	}
	for _, ip := range []string{"", "not an ip", "../../etc", "2001:db8::/64"} {
		got := clientNet(ip)
		if !strings.HasPrefix(got, "x-") || strings.ContainsAny(got, `:/\.`) || got == clientNet("other") {
			t.Errorf("clientNet(%q) = %q", ip, got)
		}
	}
}

// failingStore is a store that cannot be reached while down is set.
type failingStore struct {
	session.Store
	down atomic.Bool
}

var errStoreDown = errors.New("store down")

func (f *failingStore) Get(ctx context.Context, key string) ([]byte, error) {
	if f.down.Load() {
		return nil, errStoreDown
	}
	return f.Store.Get(ctx, key)
}

func (f *failingStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if f.down.Load() {
		return errStoreDown
	}
	return f.Store.Set(ctx, key, value, ttl)
}

func (f *failingStore) Lock(ctx context.Context, name string) (func(), error) {
	if f.down.Load() {
		return nil, errStoreDown
	}
	return f.Store.Lock(ctx, name)
}

// Instances sharing a store share one count, per client network.
func TestLoginLimitCountsInStore(t *testing.T) {
	clock := newFakeClock()
	store := session.NewMemory()
	conf := &LoginLimit{Events: 3, Window: caddy.Duration(time.Minute)}
	a := newLoginLimit(conf, store, "wxauth/app", clock.Now)
	b := newLoginLimit(conf, store, "wxauth/app", clock.Now)
	steps := []struct {
		l       *loginLimit
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
		wait, err := s.l.allow(context.Background(), s.net)
		if err != nil || wait != s.wait {
			t.Fatalf("step %d (%s): wait %v, %v; want %v", i, s.net, wait, err, s.wait)
		}
	}
	if newLoginLimit(nil, store, "p", clock.Now) != nil {
		t.Fatal("no limit should mean no limiter")
	}
}

// While the store fails, each instance counts on its own: never no limit.
func TestLoginLimitFallsBackToMemory(t *testing.T) {
	clock := newFakeClock()
	store := &failingStore{Store: session.NewMemory()}
	core, logs := observer.New(zap.WarnLevel)
	h := &Handler{logger: zap.New(core),
		limiter: newLoginLimit(&LoginLimit{Events: 2, Window: caddy.Duration(time.Minute)}, store, "wxauth/app", clock.Now)}
	check := func(ip string) error {
		ctx := context.WithValue(context.Background(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: ip})
		return h.checkLoginLimit(httptest.NewRequestWithContext(ctx, http.MethodPost, "/wx/login", nil))
	}
	expectLimited := func(step string, err error, retry string) {
		t.Helper()
		ae, ok := err.(*apierr.Error)
		if !ok || ae.Code != "rate_limited" || ae.Status != http.StatusTooManyRequests || func() string { _, v := ae.Header(); return v }() != retry {
			t.Fatalf("%s: %v, want 429 rate_limited with Retry-After %s", step, err, retry)
		}
	}
	for i := range 2 {
		if err := check("2001:db8::1"); err != nil {
			t.Fatalf("login %d with the store up: %v", i, err)
		}
	}
	store.down.Store(true)
	before := counterValue(metrics.storeLoginLimit)
	clock.Advance(10 * time.Second)
	for i := range 2 {
		if err := check("2001:db8::2"); err != nil {
			t.Fatalf("login %d with the store down: %v", i, err)
		}
	}
	expectLimited("third login with the store down", check("2001:db8::3"), "60")
	if n := counterValue(metrics.storeLoginLimit) - before; n != 3 {
		t.Fatalf("%v store errors counted, want 3", n)
	}
	if logs.FilterMessageSnippet("counting on this instance only").Len() != 3 {
		t.Fatalf("store failures not logged: %v", logs.All())
	}
	// Back up, the store's count holds again: its window is not over.
	store.down.Store(false)
	expectLimited("with the store back", check("2001:db8::4"), "50")
}
