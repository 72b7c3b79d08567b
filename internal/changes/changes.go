// Package changes is an app's change feed: the events that end sessions or
// change claims, published to every instance of the app and applied, here
// and on each of them, by the subscriber that caches tokens. A published
// event that does not reach the feed is retried in the background.
package changes

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

	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/session"
)

// Kinds of change events.
const (
	EndSession = "end_session" // a logout: sid of user
	EndUser    = "end_user"    // every session of user begun before at
	Claims     = "claims"      // the user's claims are now claims
)

// Event is a change that every instance applies to what it has cached.
// Events can only end sessions or change claims; they never grant access,
// which always takes a valid token whose session is in the store.
type Event struct {
	Type   string         `json:"type"`             // EndSession, EndUser or Claims
	SID    string         `json:"sid,omitempty"`    // the session ended (EndSession)
	OpenID string         `json:"openid,omitempty"` // the key of the user whose sessions or claims changed (users.KeyRule: the openid for the mini-program)
	At     int64          `json:"at,omitempty"`     // unix nanos: sessions begun before it end (EndUser)
	Claims map[string]any `json:"claims,omitempty"` // the user's claims now (Claims)
}

// Subscriber applies the events of the feed to what this process caches.
type Subscriber interface {
	// EndSession refuses sid of user.
	EndSession(user, sid string)
	// EndUser refuses every session of user begun before at.
	EndUser(user string, at time.Time)
	// SetClaims makes claims the user's claims.
	SetClaims(user string, claims map[string]any)
}

// GapListener is told when the feed was reset: events may have been lost.
type GapListener interface{ Gap() }

// PublishAttempts bounds the tries of one publish before it is left to the
// background retry.
const PublishAttempts = 3

// pendingMax bounds the events waiting for the background retry.
const pendingMax = 1024

// Config is what Changes needs.
type Config struct {
	// Feed carries the events between instances.
	Feed session.Feed
	// Subscriber applies every event, published here or followed.
	Subscriber Subscriber
	// Logger gets what goes wrong; nil logs nothing.
	Logger *zap.Logger
	// Now is the clock; nil is the real one.
	Now clock.Clock
	// FeedLost is called each time a read of the feed fails (a metric); may be nil.
	FeedLost func()
}

// Changes publishes the app's events and applies the ones it follows.
type Changes struct {
	feed     session.Feed
	sub      Subscriber
	logger   *zap.Logger
	now      clock.Clock
	feedLost func()

	caught atomic.Int64 // unix nanos up to which every event was applied
	gap    atomic.Int64 // unix nanos of the last gap: tokens confirmed before it are confirmed again

	pending chan Event // events whose publish failed, for the background retry
	badLog  atomic.Int64

	// Told after a gap: the store may have been wiped, keys with it. The
	// key sources of every handler of the app subscribe while provisioned.
	listenMu  sync.Mutex
	listeners map[GapListener]struct{}
}

// New returns the change feed of cfg.
func New(cfg Config) *Changes {
	c := &Changes{feed: cfg.Feed, sub: cfg.Subscriber, logger: cfg.Logger, now: cfg.Now, feedLost: cfg.FeedLost,
		pending: make(chan Event, pendingMax), listeners: map[GapListener]struct{}{}}
	if c.logger == nil {
		c.logger = zap.NewNop()
	}
	if c.now == nil {
		c.now = clock.Real
	}
	return c
}

// SubscribeGaps tells l (a pointer, so comparable) of the feed's gaps
// until the returned func is called.
func (c *Changes) SubscribeGaps(l GapListener) (unsubscribe func()) {
	c.listenMu.Lock()
	defer c.listenMu.Unlock()
	c.listeners[l] = struct{}{}
	return func() {
		c.listenMu.Lock()
		defer c.listenMu.Unlock()
		delete(c.listeners, l)
	}
}

// CaughtUp returns the unix nanos up to which every event of the feed was
// applied (0 before the feed was first read).
func (c *Changes) CaughtUp() int64 { return c.caught.Load() }

// LastGap returns the unix nanos of the last gap or wipe (0 for none):
// tokens confirmed before it must be confirmed in the store again.
func (c *Changes) LastGap() int64 { return c.gap.Load() }

// Publish applies ev here at once and publishes it to every instance. When
// the feed cannot be reached, ev is left to Retry and the error returned.
func (c *Changes) Publish(ctx context.Context, ev Event) error {
	c.apply(ev)
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	for range PublishAttempts {
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

// apply makes the subscriber act on ev.
func (c *Changes) apply(ev Event) {
	switch ev.Type {
	case EndSession:
		if ev.SID != "" && ev.OpenID != "" {
			c.sub.EndSession(ev.OpenID, ev.SID)
		}
	case EndUser:
		if ev.OpenID != "" {
			c.sub.EndUser(ev.OpenID, time.Unix(0, ev.At))
		}
	case Claims:
		if ev.OpenID != "" {
			c.sub.SetClaims(ev.OpenID, ev.Claims)
		}
	}
}

// Follow reads the feed until ctx ends.
func (c *Changes) Follow(ctx context.Context) {
	c.feed.Follow(ctx, c.Follower())
}

// Retry publishes again the events whose publish failed, until they go
// through or ctx ends.
func (c *Changes) Retry(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-c.pending:
			b, _ := json.Marshal(ev)
			for c.feed.Publish(ctx, b) != nil {
				if !clock.Sleep(ctx, time.Second) {
					return
				}
			}
		}
	}
}

// Follower returns what Follow hands the feed: it applies the events read,
// and records catch-ups and gaps.
func (c *Changes) Follower() session.Follower { return follower{c} }

// follower is Changes as a session.Follower.
type follower struct{ c *Changes }

func (f follower) Deliver(payload []byte) {
	var ev Event
	if payload == nil || decodeEvent(payload, &ev) != nil || !validEvent(ev) {
		// Foreign, forged or from a newer version: ignored, logged at
		// most once a minute.
		now := f.c.now().UnixNano()
		if last := f.c.badLog.Load(); now-last > int64(time.Minute) && f.c.badLog.CompareAndSwap(last, now) {
			f.c.logger.Warn("ignoring an event on the change feed that does not open or is not understood")
		}
		return
	}
	f.c.apply(ev)
}

// decodeEvent reads an event with its claims' numbers as json.Number: as
// float64 a large integer id (a uid) would reach the upstream rounded.
func decodeEvent(payload []byte, ev *Event) error {
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

func (f follower) CaughtUp(at time.Time) { f.c.caught.Store(at.UnixNano()) }

func (f follower) Lost(err error) {
	if f.c.feedLost != nil {
		f.c.feedLost()
	}
	f.c.logger.Debug("change feed unreachable; retrying", zap.Error(err))
}

func (f follower) Gap() {
	f.c.logger.Warn("the change feed was reset; cached tokens are confirmed in the store again")
	f.c.gapped()
	f.c.listenMu.Lock()
	listeners := make([]GapListener, 0, len(f.c.listeners))
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
func (c *Changes) gapped() { c.gap.Store(c.now().UnixNano()) }

// Wiped is told by the key source that the store was wiped: events may
// have been lost with it, as in a gap.
func (c *Changes) Wiped() { c.gapped() }

func validEvent(ev Event) bool {
	switch ev.Type {
	case EndSession:
		return ev.SID != "" && ev.OpenID != ""
	case EndUser:
		return ev.OpenID != "" && ev.At > 0
	case Claims:
		return ev.OpenID != ""
	}
	return false
}
