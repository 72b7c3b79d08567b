package wxauth

import (
	"container/list"
	"context"
	"encoding/hex"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/session"
)

// LoginLimit caps logins per client IP (per /64 for IPv6) across the
// cluster. It is off by default: mobile carriers put many users behind one
// IP, so set it with care. The client IP is Caddy's, which honours the
// server's trusted_proxies.
type LoginLimit struct {
	// Logins allowed per client IP in each window.
	Events int `json:"events"`
	// Length of the window.
	Window caddy.Duration `json:"window"`
}

// maxLimitedIPs bounds the limiter's memory; beyond it the address whose
// window started longest ago is forgotten, one at a time.
const maxLimitedIPs = 100_000

// limiter is a fixed-window counter per client IP, kept in memory: the
// login limit's fallback while the store fails.
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

func newLimiter(l *LoginLimit) *limiter {
	if l == nil || l.Events <= 0 {
		return nil
	}
	return &limiter{events: l.Events, window: time.Duration(l.Window), max: maxLimitedIPs,
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

// loginLimit counts logins per client network in the store, so that the
// limit holds for the cluster, not for each instance. While the store
// fails, each instance counts in memory on its own: a looser limit, but
// never none, since every login it lets through costs a WeChat call.
type loginLimit struct {
	counter windowCounter
	prefix  string
	mem     *limiter
}

func newLoginLimit(l *LoginLimit, store session.Store, prefix string, now func() time.Time) *loginLimit {
	mem := newLimiter(l)
	if mem == nil {
		return nil
	}
	return &loginLimit{
		counter: windowCounter{store: store, limit: l.Events, window: time.Duration(l.Window), now: now},
		prefix:  prefix,
		mem:     mem,
	}
}

// allow counts a login from network (a clientNet name) and returns how
// long it must wait, 0 when it may log in now. A store error says that
// this instance's memory counted the login instead.
func (l *loginLimit) allow(ctx context.Context, network string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	_, wait, err := l.counter.take(ctx, l.prefix+"/login_limit/"+network)
	if err == nil {
		return wait, nil
	}
	_, wait = l.mem.allow(network, l.counter.now())
	return wait, err
}

// clientNet names what the login limit counts for a client IP: an IPv4
// address, or an IPv6 /64, since one host or subscriber is handed a whole
// /64 and could otherwise take a new address for every login. An
// IPv4-mapped IPv6 address is its IPv4 address. The name is a safe last
// element of a store key: file storages use keys as paths, and ':' is not
// allowed in every file system's names.
func clientNet(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		// Caddy always sets an address; anything else is counted apart.
		return "x-" + hash(ip)[:32]
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	b := a.As16()
	return "v6-" + hex.EncodeToString(b[:8])
}

// checkLoginLimit answers 429 when the client's network is over the login
// limit.
func (h *Handler) checkLoginLimit(r *http.Request) error {
	if h.limiter == nil {
		return nil
	}
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	wait, err := h.limiter.allow(r.Context(), clientNet(ip))
	// A client that hung up is no sign of a failing store.
	if err != nil && r.Context().Err() == nil {
		metrics.storeLoginLimit.Inc()
		h.requestLogger(r).Warn("login_limit: the store is not reachable; counting on this instance only", zap.Error(err))
	}
	if wait > 0 {
		return rateLimited("too many logins from this address; try again later", wait)
	}
	return nil
}
