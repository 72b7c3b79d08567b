package wxauth

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

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
	changes *changes  // events of the app, published and followed
	ring    keys.Last // the last keyring loaded from the store
}

// Destruct implements caddy.Destructor; the state holds nothing to close.
func (*appState) Destruct() error { return nil }

// loadAppState returns the state under key, made with feed (nil for a
// store of this process alone) when new, and a function that releases it.
func loadAppState(key string, feed session.Feed, keep time.Duration, logger *zap.Logger) (*appState, func()) {
	v, _, _ := appStates.LoadOrNew(key, func() (caddy.Destructor, error) {
		a := &appState{ended: newEndedSet(clock.Real)}
		a.changes = &changes{
			feed:    feed,
			ended:   a.ended,
			health:  new(feedHealth),
			keep:    keep,
			logger:  logger,
			pending: make(chan event, 1024),
		}
		return a, nil
	})
	return v.(*appState), func() { _, _ = appStates.Delete(key) }
}
