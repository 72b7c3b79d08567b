package wxauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/quota"
	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/wxauth/caddy-wxauth/session"
)

// WeChat bills some APIs per call and rate-limits all of them per app, so
// calls a client can repeat at will are bounded here, in the store, where
// every instance and every session of a user count together.

// Defaults of phone_limit.
const (
	// DefaultPhoneCalls is how many WeChat phone number calls one user may
	// cause per window unless phone_limit is set.
	DefaultPhoneCalls = 5
	// DefaultPhoneWindow is phone_limit's window unless set.
	DefaultPhoneWindow = 10 * time.Minute
)

// checkSessionTTL is how long WeChat's checksession answer for a session is
// reused.
const checkSessionTTL = 60 * time.Second

// PhoneLimit caps the WeChat getPhoneNumber calls that one user (openid)
// causes through the phone endpoint, across every session and instance.
type PhoneLimit struct {
	// WeChat calls allowed per openid in each window.
	Calls int `json:"calls"`
	// Length of the window, which starts at the first call.
	Window caddy.Duration `json:"window"`
}

// reservePhone counts one phone number request for the user key user
// (users.KeyRule: under link_by unionid the person, whichever app asks), or
// refuses it with 429 and Retry-After when the window is used up, or 503
// when the store fails. refund takes it back, for a request that never
// reached the platform.
func (h *Handler) reservePhone(ctx context.Context, user string) (refund func(), err error) {
	refund, wait, err := h.phone.Reserve(ctx, user)
	switch {
	case err != nil:
		return nil, apierr.StoreUnavailable
	case wait > 0:
		return nil, rateLimited("this user asked for a phone number too often; try again later", wait)
	}
	return refund, nil
}

// rateLimited is the 429 answer; Retry-After rounds up, so a client that
// obeys it never comes back before the window ends.
func rateLimited(msg string, wait time.Duration) error {
	return apierr.RateLimited(msg, int64((wait+time.Second-1)/time.Second))
}

// checkRecord is WeChat's checksession answer for one session.
type checkRecord struct {
	Key   string `json:"k"` // hash of the session_key that was checked
	Valid bool   `json:"v"`
}

// sessionKeyValid asks WeChat whether key, the newest session_key of s's
// openid, is still valid, at most once per session per checkSessionTTL on
// every instance together: the answer is kept in the store. A newer
// session_key (a login since) is asked about again.
func (h *Handler) sessionKeyValid(ctx context.Context, s *session.Session, key string, ask func() (bool, error)) (bool, error) {
	name := h.prefix + "/checksession/" + s.ID
	// Held while WeChat is asked, so concurrent requests share one call.
	lctx, cancel := context.WithTimeout(ctx, storeTimeout+time.Duration(h.WeChatTimeout))
	defer cancel()
	unlock, err := h.store.Lock(lctx, name)
	if err != nil {
		return false, apierr.StoreUnavailable
	}
	defer unlock()
	sum := session.HashKey(key)[:16]
	b, err := h.store.Get(lctx, name)
	switch {
	case errors.Is(err, session.ErrNotFound):
	case err != nil:
		return false, apierr.StoreUnavailable
	default:
		var rec checkRecord
		if json.Unmarshal(b, &rec) == nil && rec.Key == sum {
			return rec.Valid, nil
		}
	}
	valid, err := ask()
	if err != nil {
		return false, err // not kept: the next request asks again
	}
	if b, err := json.Marshal(checkRecord{Key: sum, Valid: valid}); err == nil {
		// Best effort: without it the next request asks WeChat again.
		_ = h.store.Set(lctx, name, b, checkSessionTTL)
	}
	return valid, nil
}

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

// provisionLimits sets up login_limit (when set) and phone_limit, counted
// in the store.
func (h *Handler) provisionLimits() {
	if l := h.LoginLimit; l != nil {
		h.limiter = quota.NewLogin(quota.Config{Store: h.store, Prefix: h.prefix, Limit: l.Events, Window: time.Duration(l.Window), Timeout: storeTimeout})
	}
	h.phone = quota.NewPhone(quota.Config{Store: h.store, Prefix: h.prefix, Limit: h.PhoneLimit.Calls, Window: time.Duration(h.PhoneLimit.Window), Timeout: storeTimeout})
}
