package session

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"time"
)

// sealedPrefix marks a sealed value (format version 1).
const sealedPrefix = "wxs1:"

// Sealed wraps s so that every value is stored encrypted with AES-256-GCM
// under key (32 bytes) and bound to its key name: a copy of the store (a
// Redis dump, a shared folder) gives away no session_key, signing key,
// access_token or user data, and a value moved to another key does not open.
// Values that do not open read as ErrNotFound, so after the key changes the
// state is simply rebuilt (users log in again, keys are generated anew).
func Sealed(s Store, key []byte) (Store, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return &sealedStore{s: s, aead: aead}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("session: sealing key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// feedName binds sealed feed payloads, so a stored value cannot pass for one.
const feedName = "wxauth feed"

// SealedFeed wraps f so that payloads travel encrypted and authenticated
// with key, as Sealed does for a store: whoever can write to the feed
// without the key cannot make an instance act on an event. A payload that
// does not open is delivered as nil, for the follower to ignore.
func SealedFeed(f Feed, key []byte) (Feed, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return &sealedFeed{f: f, x: &sealedStore{aead: aead}}, nil
}

type sealedFeed struct {
	f Feed
	x *sealedStore
}

// Publish seals payload and publishes it.
func (s *sealedFeed) Publish(ctx context.Context, payload []byte) error {
	b, err := s.x.seal(feedName, payload)
	if err != nil {
		return err
	}
	return s.f.Publish(ctx, b)
}

// Follow follows the feed, opening each payload.
func (s *sealedFeed) Follow(ctx context.Context, fl Follower) {
	s.f.Follow(ctx, openingFollower{fl, s.x})
}

type openingFollower struct {
	Follower
	x *sealedStore
}

func (o openingFollower) Deliver(p []byte) {
	v, err := o.x.open(feedName, p)
	if err != nil {
		v = nil
	}
	o.Follower.Deliver(v)
}

type sealedStore struct {
	s    Store
	aead cipher.AEAD
}

var errUnsealed = errors.New("session: stored value does not open with this key")

// ErrUnsealed is returned by a sealed store's Get when a value is present
// but does not open with the store's key: it was sealed with another key
// (another app_secret, or another deployment sharing the store). It
// matches ErrNotFound (errors.Is), so the state is rebuilt as for an absent
// value, while a caller that cares can tell the two apart.
var ErrUnsealed error = unsealed{}

type unsealed struct{}

func (unsealed) Error() string { return "session: stored value does not open with this store's key" }
func (unsealed) Unwrap() error { return ErrNotFound }

func (x *sealedStore) seal(key string, value []byte) ([]byte, error) {
	nonce := make([]byte, x.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return append([]byte(sealedPrefix), x.aead.Seal(nonce, nonce, value, []byte(key))...), nil
}

func (x *sealedStore) open(key string, stored []byte) ([]byte, error) {
	n := x.aead.NonceSize()
	if len(stored) < len(sealedPrefix)+n || string(stored[:len(sealedPrefix)]) != sealedPrefix {
		return nil, errUnsealed
	}
	body := stored[len(sealedPrefix):]
	v, err := x.aead.Open(nil, body[:n], body[n:], []byte(key))
	if err != nil {
		return nil, errUnsealed
	}
	return v, nil
}

// Get returns the opened value, ErrNotFound when it is absent, or
// ErrUnsealed (which matches ErrNotFound) when it does not open.
func (x *sealedStore) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := x.s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	v, err := x.open(key, b)
	if err != nil {
		return nil, ErrUnsealed
	}
	return v, nil
}

// Set stores the sealed value.
func (x *sealedStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	b, err := x.seal(key, value)
	if err != nil {
		return err
	}
	return x.s.Set(ctx, key, b, ttl)
}

// SetNX stores the sealed value when key is absent. A present value that
// does not open (sealed under an older key) counts as absent; it is replaced
// under the store's lock, so racing instances still agree on one value.
func (x *sealedStore) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	b, err := x.seal(key, value)
	if err != nil {
		return false, err
	}
	if ok, err := x.s.SetNX(ctx, key, b, ttl); ok || err != nil {
		return ok, err
	}
	if _, err := x.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		return false, err
	}
	unlock, err := x.s.Lock(ctx, "sealed/"+key)
	if err != nil {
		return false, err
	}
	defer unlock()
	if _, err := x.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		return false, err
	}
	return true, x.s.Set(ctx, key, b, ttl)
}

// Delete removes key.
func (x *sealedStore) Delete(ctx context.Context, key string) error { return x.s.Delete(ctx, key) }

// Lock takes the underlying store's lock.
func (x *sealedStore) Lock(ctx context.Context, name string) (func(), error) {
	return x.s.Lock(ctx, name)
}
