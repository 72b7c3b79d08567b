// Package quota bounds what a client can repeat at will: WeChat bills some
// APIs per call and rate-limits all of them per app. Counts are kept in
// the store, in fixed windows, so that every instance and every session of
// a user count together.
//
// The package answers with values: how long a caller must wait, and the
// store's error. Turning them into HTTP answers is the handler's job.
package quota

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/session"
)

// Config configures a Phone quota or a Login limit.
type Config struct {
	// Store keeps the counts; shared by every instance.
	Store session.Store
	// Prefix of the app's store keys, e.g. "wxauth/<appid>".
	Prefix string
	// Limit is how many events a key may count in each window.
	Limit int
	// Window is the length of a window, which starts at its first event.
	Window time.Duration
	// Timeout bounds each use of the store; 0 means none beyond the
	// caller's context.
	Timeout time.Duration
	// Now is the clock; nil means clock.Real.
	Now clock.Clock
}

func (c Config) counter() windowCounter {
	now := c.Now
	if now == nil {
		now = clock.Real
	}
	return windowCounter{store: c.Store, limit: c.Limit, window: c.Window, now: now}
}

// withTimeout bounds ctx by timeout, when there is one.
func withTimeout(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, timeout)
}

// Phone counts WeChat phone number calls per openid in the store.
type Phone struct {
	counter windowCounter
	prefix  string
	timeout time.Duration
}

// NewPhone returns the phone quota of cfg.
func NewPhone(cfg Config) *Phone {
	return &Phone{counter: cfg.counter(), prefix: cfg.Prefix, timeout: cfg.Timeout}
}

func (q *Phone) key(openid string) string { return q.prefix + "/phone_calls/" + openid }

// Reserve counts one call for openid. When the window is used up it counts
// nothing and returns how long until the window ends; an error is the
// store's. refund takes the call back, for a call that never reached
// WeChat; it is nil unless the call was counted.
func (q *Phone) Reserve(ctx context.Context, openid string) (refund func(), wait time.Duration, err error) {
	ctx, cancel := withTimeout(ctx, q.timeout)
	defer cancel()
	key := q.key(openid)
	reset, wait, err := q.counter.take(ctx, key)
	if err != nil || wait > 0 {
		return nil, wait, err
	}
	return func() {
		rctx, cancel := withTimeout(context.WithoutCancel(ctx), q.timeout)
		defer cancel()
		_ = q.counter.giveBack(rctx, key, reset)
	}, 0, nil
}

// windowCounter counts events per key in fixed windows kept in the store,
// each starting at its first event. Counts change under the store's lock on
// the key, so concurrent requests on any instance never pass the limit
// together.
type windowCounter struct {
	store  session.Store
	limit  int // events per window
	window time.Duration
	now    clock.Clock
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
