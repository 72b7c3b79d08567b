package wxauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

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

// phoneQuota counts WeChat phone calls per openid in fixed windows kept in
// the store. Counts change under the store's lock, so concurrent requests
// on any instance never pass the limit together.
type phoneQuota struct {
	store  session.Store
	prefix string
	calls  int
	window time.Duration
	now    func() time.Time
}

// phoneWindow is the stored count of one openid's window.
type phoneWindow struct {
	N     int   `json:"n"`
	Reset int64 `json:"reset"` // unix milliseconds when the window ends
}

func (q *phoneQuota) key(openid string) string { return q.prefix + "/phone_calls/" + openid }

// reserve counts one call for openid, or refuses it with 429 and
// Retry-After when the window is used up. refund takes the call back, for
// a call that never reached WeChat.
func (q *phoneQuota) reserve(ctx context.Context, openid string) (refund func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	key := q.key(openid)
	var win phoneWindow
	err = q.update(ctx, key, func(w *phoneWindow, now time.Time) (bool, error) {
		if now.UnixMilli() >= w.Reset {
			*w = phoneWindow{Reset: now.Add(q.window).UnixMilli()}
		}
		if w.N >= q.calls {
			wait := time.UnixMilli(w.Reset).Sub(now)
			secs := max(int64((wait+time.Second-1)/time.Second), 1)
			return false, newError(http.StatusTooManyRequests, "rate_limited",
				"this user asked for a phone number too often; try again later").with("Retry-After", strconv.FormatInt(secs, 10))
		}
		w.N++
		win = *w
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		defer cancel()
		_ = q.update(rctx, key, func(w *phoneWindow, _ time.Time) (bool, error) {
			if w.Reset != win.Reset || w.N == 0 {
				return false, nil // a later window: nothing of ours to take back
			}
			w.N--
			return true, nil
		})
	}, nil
}

// update runs change on openid's window under the store's lock and stores
// the result when change says so.
func (q *phoneQuota) update(ctx context.Context, key string, change func(w *phoneWindow, now time.Time) (bool, error)) error {
	unlock, err := q.store.Lock(ctx, key)
	if err != nil {
		return storeUnavailable()
	}
	defer unlock()
	var w phoneWindow
	b, err := q.store.Get(ctx, key)
	switch {
	case errors.Is(err, session.ErrNotFound):
	case err != nil:
		return storeUnavailable()
	default:
		// An unreadable record counts as a new window.
		_ = json.Unmarshal(b, &w)
	}
	now := q.now()
	store, err := change(&w, now)
	if err != nil || !store {
		return err
	}
	ttl := time.UnixMilli(w.Reset).Sub(now)
	if ttl <= 0 {
		return nil
	}
	b, _ = json.Marshal(w)
	if err := q.store.Set(ctx, key, b, ttl); err != nil {
		return storeUnavailable()
	}
	return nil
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
		return false, storeUnavailable()
	}
	defer unlock()
	sum := hash(key)[:16]
	b, err := h.store.Get(lctx, name)
	switch {
	case errors.Is(err, session.ErrNotFound):
	case err != nil:
		return false, storeUnavailable()
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
