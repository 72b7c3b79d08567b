package wxauth

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/changes"
	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/keys"
	"github.com/wxauth/caddy-wxauth/session"
)

// appStates holds what the handlers of one app share in this process, kept
// across config reloads: a reload sees the sessions ended before it, and a
// config loaded while the store is down keeps the keys the last one loaded.
// Each entry is keyed by store, app and store key, so a test or a config of
// another app never sees it.
var appStates = caddy.NewUsagePool()

// appState is one app's shared state in this process.
type appState struct {
	ended   *endedSet
	changes *changes.Changes // events of the app, published and followed
	ring    keys.Last        // the last keyring loaded from the store
}

// Destruct implements caddy.Destructor; the state holds nothing to close.
func (*appState) Destruct() error { return nil }

// loadAppState returns the state under key, made with feed (nil for a
// store of this process alone) when new, and a function that releases it.
func loadAppState(key string, feed session.Feed, keep time.Duration, logger *zap.Logger) (*appState, func()) {
	v, _, _ := appStates.LoadOrNew(key, func() (caddy.Destructor, error) {
		ended := newEndedSet(clock.Real)
		return &appState{ended: ended, changes: newChanges(feed, ended, keep, clock.Real, logger)}, nil
	})
	return v.(*appState), func() { _, _ = appStates.Delete(key) }
}

// newChanges returns the change feed of an app: the events it follows (and
// publishes) are applied to ended, whose records are kept for keep.
func newChanges(feed session.Feed, ended *endedSet, keep time.Duration, now clock.Clock, logger *zap.Logger) *changes.Changes {
	return changes.New(changes.Config{
		Feed:       feed,
		Subscriber: endedSubscriber{ended: ended, keep: keep},
		Logger:     logger,
		Now:        now,
		FeedLost:   func() { metrics.storeFeed.Inc() },
	})
}

// endedSubscriber applies the feed's events to an app's ended set.
type endedSubscriber struct {
	ended *endedSet
	keep  time.Duration // how long ended records are kept: a token's life
}

func (s endedSubscriber) EndSession(openid, sid string) { s.ended.endSession(openid, sid, s.keep) }

func (s endedSubscriber) EndUser(openid string, at time.Time) {
	s.ended.endUser(openid, at, s.keep)
}

func (s endedSubscriber) SetClaims(openid string, claims map[string]any) {
	s.ended.setClaims(openid, claims)
}
