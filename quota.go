package wxauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"

	"github.com/caddyserver/caddy/v2"

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

// phoneQuota counts WeChat phone calls per openid in the store.
type phoneQuota struct {
	windowCounter
	prefix string
}

func (q *phoneQuota) key(openid string) string { return q.prefix + "/phone_calls/" + openid }

// reserve counts one call for openid, or refuses it with 429 and
// Retry-After when the window is used up. refund takes the call back, for
// a call that never reached WeChat.
func (q *phoneQuota) reserve(ctx context.Context, openid string) (refund func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	key := q.key(openid)
	reset, wait, err := q.take(ctx, key)
	if err != nil {
		return nil, apierr.StoreUnavailable
	}
	if wait > 0 {
		return nil, rateLimited("this user asked for a phone number too often; try again later", wait)
	}
	return func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		defer cancel()
		_ = q.giveBack(rctx, key, reset)
	}, nil
}

// rateLimited is the 429 answer; Retry-After rounds up, so a client that
// obeys it never comes back before the window ends.
func rateLimited(msg string, wait time.Duration) error {
	secs := max(int64((wait+time.Second-1)/time.Second), 1)
	return apierr.New(http.StatusTooManyRequests, "rate_limited", msg).WithHeader("Retry-After", strconv.FormatInt(secs, 10))
}

// windowCounter counts events per key in fixed windows kept in the store,
// each starting at its first event. Counts change under the store's lock on
// the key, so concurrent requests on any instance never pass the limit
// together.
type windowCounter struct {
	store  session.Store
	limit  int // events per window
	window time.Duration
	now    func() time.Time
}

// countWindow is the stored count of one key's window.
type countWindow struct {
	N     int   `json:"n"`
	Reset int64 `json:"reset"` // unix milliseconds when the window ends
}

// take counts one event for key and returns its window's end, for
// giveBack. When the window is used up it counts nothing and returns how
// long until the window ends instead. An error is the store's.
func (c *windowCounter) take(ctx context.Context, key string) (reset int64, wait time.Duration, err error) {
	err = c.update(ctx, key, func(w *countWindow, now time.Time) bool {
		if now.UnixMilli() >= w.Reset {
			*w = countWindow{Reset: now.Add(c.window).UnixMilli()}
		}
		if w.N >= c.limit {
			wait = time.UnixMilli(w.Reset).Sub(now)
			return false
		}
		w.N++
		reset = w.Reset
		return true
	})
	return reset, wait, err
}

// giveBack takes back an event that take counted in the window ending at
// reset. A later window holds nothing of it and is left alone.
func (c *windowCounter) giveBack(ctx context.Context, key string, reset int64) error {
	return c.update(ctx, key, func(w *countWindow, _ time.Time) bool {
		if w.Reset != reset || w.N == 0 {
			return false
		}
		w.N--
		return true
	})
}

// update runs change on key's window under the store's lock and stores the
// result when change says so.
func (c *windowCounter) update(ctx context.Context, key string, change func(w *countWindow, now time.Time) bool) error {
	unlock, err := c.store.Lock(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	var w countWindow
	b, err := c.store.Get(ctx, key)
	switch {
	case errors.Is(err, session.ErrNotFound):
	case err != nil:
		return err
	default:
		// An unreadable record counts as a new window.
		_ = json.Unmarshal(b, &w)
	}
	now := c.now()
	if !change(&w, now) {
		return nil
	}
	ttl := time.UnixMilli(w.Reset).Sub(now)
	if ttl <= 0 {
		return nil
	}
	b, _ = json.Marshal(w)
	return c.store.Set(ctx, key, b, ttl)
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
	sum := hash(key)[:16]
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
