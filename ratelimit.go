package wxauth

import (
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

// maxLimitedIPs bounds the limiter's memory; beyond it, finished windows are
// dropped, and if every window is live the oldest state is reset.
const maxLimitedIPs = 100_000

// limiter is a fixed-window counter per client IP, kept in memory.
type limiter struct {
	events int
	window time.Duration

	mu  sync.Mutex
	ips map[string]*ipWindow
}

type ipWindow struct {
	start time.Time
	n     int
}

func newLimiter(l *LoginLimit) *limiter {
	if l == nil || l.Events <= 0 {
		return nil
	}
	return &limiter{events: l.Events, window: time.Duration(l.Window), ips: map[string]*ipWindow{}}
}

// allow reports whether ip may log in now, or how long it must wait.
func (l *limiter) allow(ip string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.ips[ip]
	if w == nil || now.Sub(w.start) >= l.window {
		if w == nil && len(l.ips) >= maxLimitedIPs {
			for k, v := range l.ips {
				if now.Sub(v.start) >= l.window {
					delete(l.ips, k)
				}
			}
			if len(l.ips) >= maxLimitedIPs {
				clear(l.ips)
			}
		}
		w = &ipWindow{start: now}
		l.ips[ip] = w
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
