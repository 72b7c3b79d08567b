package wxauth

import (
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/wxauth/caddy-wxauth/token"
)

// appStates holds what the handlers of one app share in this process, kept
// across config reloads: a reload sees the sessions ended before it, and a
// config loaded while the store is down keeps the keys the last one loaded.
// Each entry is keyed by store, app and store key, so a test or a config of
// another app never sees it.
var appStates = caddy.NewUsagePool()

// appState is one app's shared state in this process.
type appState struct {
	ended *endedSet
	ring  atomic.Pointer[token.Keyring] // the last keyring loaded from the store
}

// Destruct implements caddy.Destructor; the state holds nothing to close.
func (*appState) Destruct() error { return nil }

// loadAppState returns the state under key and a function that releases it.
func loadAppState(key string) (*appState, func()) {
	v, _, _ := appStates.LoadOrNew(key, func() (caddy.Destructor, error) {
		return &appState{ended: newEndedSet(time.Now)}, nil
	})
	return v.(*appState), func() { _, _ = appStates.Delete(key) }
}
