package quota

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"sync"
	"time"
)

// maxLimitedIPs bounds the memory fallback; beyond it the network whose
// window started longest ago is forgotten, one at a time.
const maxLimitedIPs = 100_000

// Login counts logins per client network in the store, so that the limit
// holds for the cluster, not for each instance. While the store fails,
// each instance counts in memory on its own: a looser limit, but never
// none, since every login it lets through costs a WeChat call.
type Login struct {
	counter windowCounter
	prefix  string
	timeout time.Duration
	mem     *limiter
}

// NewLogin returns the login limit of cfg, or nil when cfg.Limit is not
// positive: no limit.
func NewLogin(cfg Config) *Login {
	mem := newLimiter(cfg.Limit, cfg.Window)
	if mem == nil {
		return nil
	}
	return &Login{counter: cfg.counter(), prefix: cfg.Prefix, timeout: cfg.Timeout, mem: mem}
}

// Allow counts a login from network (a ClientNet name) and returns how
// long it must wait, 0 when it may log in now. A store error says that
// this instance's memory counted the login instead.
func (l *Login) Allow(ctx context.Context, network string) (time.Duration, error) {
	ctx, cancel := withTimeout(ctx, l.timeout)
	defer cancel()
	_, wait, err := l.counter.take(ctx, l.prefix+"/login_limit/"+network)
	if err == nil {
		return wait, nil
	}
	_, wait = l.mem.allow(network, l.counter.now())
	return wait, err
}

// ClientNet names what the login limit counts for a client IP: an IPv4
// address, or an IPv6 /64, since one host or subscriber is handed a whole
// /64 and could otherwise take a new address for every login. An
// IPv4-mapped IPv6 address is its IPv4 address. The name is a safe last
// element of a store key: file storages use keys as paths, and ':' is not
// allowed in every file system's names.
func ClientNet(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		// Caddy always sets an address; anything else is counted apart.
		sum := sha256.Sum256([]byte(ip))
		return "x-" + hex.EncodeToString(sum[:16])
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	b := a.As16()
	return "v6-" + hex.EncodeToString(b[:8])
}

// limiter is a fixed-window counter per client network, kept in memory:
// the login limit's fallback while the store fails.
type limiter struct {
	events int
	window time.Duration
	max    int

	mu    sync.Mutex
	ips   map[string]*list.Element // of *ipWindow
	order *list.List               // oldest window start first
}

type ipWindow struct {
	ip    string
	start time.Time
	n     int
}

// newLimiter returns a limiter of events per window, or nil when events is
// not positive.
func newLimiter(events int, window time.Duration) *limiter {
	if events <= 0 {
		return nil
	}
	return &limiter{events: events, window: window, max: maxLimitedIPs,
		ips: map[string]*list.Element{}, order: list.New()}
}

// allow reports whether ip may log in now, or how long it must wait.
func (l *limiter) allow(ip string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var w *ipWindow
	if e := l.ips[ip]; e != nil {
		w = e.Value.(*ipWindow)
		if now.Sub(w.start) >= l.window {
			// A new window: it is now the youngest.
			w.start, w.n = now, 0
			l.order.MoveToBack(e)
		}
	} else {
		for l.order.Len() >= l.max {
			oldest := l.order.Front()
			delete(l.ips, oldest.Value.(*ipWindow).ip)
			l.order.Remove(oldest)
		}
		w = &ipWindow{ip: ip, start: now}
		l.ips[ip] = l.order.PushBack(w)
	}
	if w.n >= l.events {
		return false, w.start.Add(l.window).Sub(now)
	}
	w.n++
	return true, 0
}
