package wxauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/session"
)

// Kinds of change events.
const (
	eventEndSession = "end_session" // a logout: sid of openid
	eventEndUser    = "end_user"    // every session of openid begun before at
	eventClaims     = "claims"      // openid's claims are now claims
)

// event is a change that every instance applies to what it has cached.
// Events can only end sessions or change claims; they never grant access,
// which always takes a valid token whose session is in the store.
type event struct {
	Type   string         `json:"type"`
	SID    string         `json:"sid,omitempty"`
	OpenID string         `json:"openid,omitempty"`
	At     int64          `json:"at,omitempty"` // unix nanos
	Claims map[string]any `json:"claims,omitempty"`
}

// publishAttempts bounds the tries of one publish before it is left to the
// background retry.
const publishAttempts = 3

// changes publishes the app's events and applies the ones it follows.
type changes struct {
	feed   session.Feed
	ended  *endedSet
	health *feedHealth
	keep   time.Duration // how long ended records are kept: a token's life
	logger *zap.Logger

	pending chan event // events whose publish failed, for the background retry
	badLog  atomic.Int64

	// Told after a gap: the store may have been wiped, keys with it. The
	// key sources of every handler of the app subscribe while provisioned.
	listenMu  sync.Mutex
	listeners map[gapListener]struct{}
}

// gapListener is told when the app's change feed was reset.
type gapListener interface{ Gap() }

// onGap subscribes l (a pointer, so comparable) to the feed's gaps until
// the returned func is called.
func (c *changes) onGap(l gapListener) (unsubscribe func()) {
	c.listenMu.Lock()
	defer c.listenMu.Unlock()
	if c.listeners == nil {
		c.listeners = map[gapListener]struct{}{}
	}
	c.listeners[l] = struct{}{}
	return func() {
		c.listenMu.Lock()
		defer c.listenMu.Unlock()
		delete(c.listeners, l)
	}
}

// feedHealth is how far the app's feed has been read, for the freshness
// policy.
type feedHealth struct {
	caught atomic.Int64 // unix nanos up to which every event was applied
	gap    atomic.Int64 // unix nanos of the last gap: tokens confirmed before it are confirmed again
}

// publish applies ev here at once and publishes it to every instance.
func (c *changes) publish(ctx context.Context, ev event) error {
	c.apply(ev)
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	for range publishAttempts {
		if err = c.feed.Publish(ctx, b); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		select {
		case c.pending <- ev:
		default:
			c.logger.Error("change feed unreachable and retry queue full; an event is lost", zap.String("type", ev.Type))
		}
	}
	return err
}

// apply makes the guards of this process act on ev.
func (c *changes) apply(ev event) {
	switch ev.Type {
	case eventEndSession:
		if ev.SID != "" && ev.OpenID != "" {
			c.ended.endSession(ev.OpenID, ev.SID, c.keep)
		}
	case eventEndUser:
		if ev.OpenID != "" {
			c.ended.endUser(ev.OpenID, time.Unix(0, ev.At), c.keep)
		}
	case eventClaims:
		if ev.OpenID != "" {
			c.ended.setClaims(ev.OpenID, ev.Claims)
		}
	}
}

// follow reads the feed until ctx ends.
func (c *changes) follow(ctx context.Context) {
	c.feed.Follow(ctx, follower{c})
}

// retry publishes again the events whose publish failed, until they go through.
func (c *changes) retry(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-c.pending:
			b, _ := json.Marshal(ev)
			for c.feed.Publish(ctx, b) != nil {
				if ctx.Err() != nil {
					return
				}
				sleepCtx(ctx, time.Second)
			}
		}
	}
}

// follower is changes as a session.Follower.
type follower struct{ c *changes }

func (f follower) Deliver(payload []byte) {
	var ev event
	if payload == nil || decodeEvent(payload, &ev) != nil || !validEvent(ev) {
		// Foreign, forged or from a newer version: ignored, logged at
		// most once a minute.
		now := time.Now().UnixNano()
		if last := f.c.badLog.Load(); now-last > int64(time.Minute) && f.c.badLog.CompareAndSwap(last, now) {
			f.c.logger.Warn("ignoring an event on the change feed that does not open or is not understood")
		}
		return
	}
	f.c.apply(ev)
}

// decodeEvent reads an event with its claims' numbers as json.Number: as
// float64 a large integer id (a uid) would reach the upstream rounded.
func decodeEvent(payload []byte, ev *event) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(ev); err != nil {
		return err
	}
	// Nothing may follow, as json.Unmarshal (used before) made sure.
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("wxauth: data after the event")
	}
	return nil
}

func (f follower) CaughtUp(at time.Time) { f.c.health.caught.Store(at.UnixNano()) }

func (f follower) Lost(err error) {
	metrics.storeFeed.Inc()
	f.c.logger.Debug("change feed unreachable; retrying", zap.Error(err))
}

func (f follower) Gap() {
	f.c.logger.Warn("the change feed was reset; cached tokens are confirmed in the store again")
	f.c.gapped()
	f.c.listenMu.Lock()
	listeners := make([]gapListener, 0, len(f.c.listeners))
	for l := range f.c.listeners {
		listeners = append(listeners, l)
	}
	f.c.listenMu.Unlock()
	for _, l := range listeners {
		l.Gap()
	}
}

// gapped makes every cached token confirmed before now be confirmed in the
// store again: events may have been lost.
func (c *changes) gapped() { c.health.gap.Store(time.Now().UnixNano()) }

// Wiped is told by the key source that the store was wiped: events may
// have been lost with it, as in a gap.
func (c *changes) Wiped() { c.gapped() }

func validEvent(ev event) bool {
	switch ev.Type {
	case eventEndSession:
		return ev.SID != "" && ev.OpenID != ""
	case eventEndUser:
		return ev.OpenID != "" && ev.At > 0
	case eventClaims:
		return ev.OpenID != ""
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// feedFreshness trusts cached tokens while the feed is caught up: every
// end or claim change then reaches the cache directly. When the feed has
// been behind for longer than bound (beyond its usual lag), a token not
// confirmed within bound is confirmed in the store before it is answered;
// after a gap, every token confirmed before it is.
type feedFreshness struct {
	health *feedHealth
	bound  time.Duration // the change bound
	lag    time.Duration // how far behind now the feed's catch-up runs when all is well
}

func (p feedFreshness) due(checked, now int64) staleness {
	switch {
	case checked < p.health.gap.Load():
		return recheckNow
	case now-p.health.caught.Load() <= int64(p.lag+p.bound), now-checked < int64(p.bound):
		return fresh
	}
	return recheckNow
}
