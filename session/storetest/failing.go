package storetest

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/wxauth/caddy-wxauth/session"
)

// ErrDown is what a Failing store answers while it is down.
var ErrDown = errors.New("store down")

// Failing wraps a store that cannot be reached while Down is set: reads,
// writes and locks fail with ErrDown, as an unreachable Redis would.
type Failing struct {
	session.Store
	Down atomic.Bool // set: every call fails with ErrDown
}

// Get fails while the store is down.
func (f *Failing) Get(ctx context.Context, key string) ([]byte, error) {
	if f.Down.Load() {
		return nil, ErrDown
	}
	return f.Store.Get(ctx, key)
}

// Set fails while the store is down.
func (f *Failing) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if f.Down.Load() {
		return ErrDown
	}
	return f.Store.Set(ctx, key, value, ttl)
}

// Lock fails while the store is down.
func (f *Failing) Lock(ctx context.Context, name string) (func(), error) {
	if f.Down.Load() {
		return nil, ErrDown
	}
	return f.Store.Lock(ctx, name)
}
