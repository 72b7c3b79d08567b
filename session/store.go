// Package session keeps wxauth's server-side state: login sessions, the
// newest session_key of each openid, signing keys and the WeChat
// access_token. A Store is a small key-value interface with expiry and a
// cluster-wide lock; the Caddy storage, memory and Redis stores implement it,
// and Sealed wraps any of them so that values are stored encrypted.
package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"time"
)

// ErrNotFound is returned by Store.Get when a key is absent or expired. It
// also matches fs.ErrNotExist (errors.Is), the rule the token and wechat
// packages use to tell an absent key from a store failure without
// importing this package.
var ErrNotFound error = notFound{}

type notFound struct{}

func (notFound) Error() string { return "session: not found" }
func (notFound) Unwrap() error { return fs.ErrNotExist }

// Store is where wxauth keeps state that must survive restarts and be shared
// by every instance of a cluster. Keys are slash-separated paths such as
// "wxauth/<appid>/sessions/<id>"; the "locks/" key space is reserved for
// locks. Implementations are safe for concurrent use.
type Store interface {
	// Get returns the value of key, or ErrNotFound when it is absent or
	// expired. Any other error is a store failure, never a sign that the
	// key is absent.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key; ttl <= 0 means it never expires.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value only when key is absent (or expired) and reports
	// whether it did. Instances racing to create the same key agree on one value.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// Lock takes a cluster-wide lock on name, blocking until it is held or
	// ctx ends. The returned function releases it.
	Lock(ctx context.Context, name string) (unlock func(), err error)
}

// HashKey names a value a client sent (a code, a call id) in a store key
// without storing the value itself: its SHA-256, in hex.
func HashKey(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
