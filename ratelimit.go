package wxauth

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/quota"
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

// checkLoginLimit answers 429 when the client's network is over the login
// limit.
func (h *Handler) checkLoginLimit(r *http.Request) error {
	if h.limiter == nil {
		return nil
	}
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	wait, err := h.limiter.Allow(r.Context(), quota.ClientNet(ip))
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
