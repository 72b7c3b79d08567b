package wxauth

import (
	"container/list"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// LoginLimit caps logins per client IP. It is off by default: mobile
// carriers put many users behind one IP, so set it with care. The client
// IP is Caddy's, which honours the server's trusted_proxies.
type LoginLimit struct {
	// Logins allowed per client IP in each window.
	Events int `json:"events"`
	// Length of the window.
	Window caddy.Duration `json:"window"`
}

// maxLimitedIPs bounds the limiter's memory; beyond it the address whose
// window started longest ago is forgotten, one at a time.
const maxLimitedIPs = 100_000

// limiter is a fixed-window counter per client IP, kept in memory.
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

// checkLoginLimit answers 429 when the client IP is over the login limit.
func (h *Handler) checkLoginLimit(r *http.Request) error {
	if h.limiter == nil {
		return nil
	}
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	ok, wait := h.limiter.allow(ip, time.Now())
	if ok {
		return nil
	}
	secs := int(wait.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return newError(http.StatusTooManyRequests, "rate_limited", "too many logins from this address; try again later").
		with("Retry-After", strconv.Itoa(secs))
}
