package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// CaddyStorage is a Store over a certmagic.Storage, normally Caddy's
// configured storage (ctx.Storage()), so every instance sharing that storage
// shares wxauth's state.
//
// A certmagic.Storage has no expiry, so each value is wrapped in an envelope:
// the 4 bytes "wxs1", the expiry as a big-endian int64 of Unix nanoseconds (0
// = never), then the payload. Expired values read as ErrNotFound and stay on
// disk until Sweep removes them.
//
// Locks are taken in this process first, then in the storage: goroutines of
// one instance queue cheaply instead of polling the storage's lock (which
// FileStorage does once a second), while instances still exclude each other.
type CaddyStorage struct {
	storage certmagic.Storage

	keys  localLocks // per key: orders Set, Delete, SetNX and Sweep in-process
	names localLocks // per Lock name
	setnx localLocks // the one name setnxLock, held in-process
}

// setnxLock names the storage lock around SetNX's check-and-store and around
// Sweep's re-check-and-delete. One lock for all keys: SetNX is rare (key
// generation, refresh races), and one name keeps the storage's lock files few.
const setnxLock = "wxauth_session_setnx"

// sweepBatch bounds how many expired keys Sweep deletes per hold of setnxLock,
// so SetNX elsewhere in the cluster waits at most one batch.
const sweepBatch = 100

// unlockTimeout bounds releasing a storage lock; it uses its own context
// because the caller's may already be done when it unlocks.
const unlockTimeout = 10 * time.Second

// NewCaddyStorage returns a Store kept in s.
func NewCaddyStorage(s certmagic.Storage) *CaddyStorage {
	return &CaddyStorage{storage: s}
}

// Get implements Store.
func (c *CaddyStorage) Get(ctx context.Context, key string) ([]byte, error) {
	value, expires, err := c.load(ctx, key)
	if err != nil {
		return nil, err
	}
	if isExpired(expires, time.Now()) {
		return nil, ErrNotFound
	}
	return value, nil
}

// Set implements Store.
func (c *CaddyStorage) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	unlock, err := c.keys.lock(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	return c.store(ctx, key, value, ttl)
}

// SetNX implements Store. The check and the store happen under the storage's
// lock, so instances sharing the storage agree on one winner.
func (c *CaddyStorage) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	unlockNX, err := c.lockSetNX(ctx)
	if err != nil {
		return false, err
	}
	defer unlockNX()
	unlock, err := c.keys.lock(ctx, key)
	if err != nil {
		return false, err
	}
	defer unlock()

	_, expires, err := c.load(ctx, key)
	switch {
	case err == nil && !isExpired(expires, time.Now()):
		return false, nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return false, err
	}
	if err := c.store(ctx, key, value, ttl); err != nil {
		return false, err
	}
	return true, nil
}

// Delete implements Store.
func (c *CaddyStorage) Delete(ctx context.Context, key string) error {
	unlock, err := c.keys.lock(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	if err := c.storage.Delete(ctx, key); err != nil {
		return fmt.Errorf("session: deleting from storage: %w", err)
	}
	return nil
}

// Lock implements Store with the storage's own lock (certmagic.Locker).
func (c *CaddyStorage) Lock(ctx context.Context, name string) (func(), error) {
	return c.lockBoth(ctx, &c.names, name)
}

// Sweep deletes the expired entries under prefix (recursively) and reports
// how many it deleted. Values that are not envelopes are left alone. A plain
// Set by another instance to a key in the instant Sweep deletes it can be
// lost; SetNX and this instance's writes cannot.
func (c *CaddyStorage) Sweep(ctx context.Context, prefix string) (int, error) {
	keys, err := c.storage.List(ctx, prefix, true)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("session: listing storage: %w", err)
	}

	var expired []string
	now := time.Now()
	for _, key := range keys {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		info, err := c.storage.Stat(ctx, key)
		if err != nil || !info.IsTerminal {
			continue // gone meanwhile, or a directory
		}
		if _, expires, err := c.load(ctx, key); err == nil && isExpired(expires, now) {
			expired = append(expired, key)
		}
	}

	deleted := 0
	for len(expired) > 0 {
		n := min(len(expired), sweepBatch)
		d, err := c.deleteExpired(ctx, expired[:n])
		deleted += d
		if err != nil {
			return deleted, err
		}
		expired = expired[n:]
	}
	return deleted, nil
}

// deleteExpired re-checks each key under the locks, since it may have been
// rewritten since Sweep read it, and deletes those still expired.
func (c *CaddyStorage) deleteExpired(ctx context.Context, keys []string) (int, error) {
	unlockNX, err := c.lockSetNX(ctx)
	if err != nil {
		return 0, err
	}
	defer unlockNX()

	deleted := 0
	for _, key := range keys {
		unlock, err := c.keys.lock(ctx, key)
		if err != nil {
			return deleted, err
		}
		_, expires, err := c.load(ctx, key)
		if err == nil && isExpired(expires, time.Now()) {
			err = c.storage.Delete(ctx, key)
			if err == nil {
				deleted++
			}
		}
		unlock()
		if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, errNotEnvelope) {
			return deleted, fmt.Errorf("session: sweeping storage: %w", err)
		}
	}
	return deleted, nil
}

// lockSetNX takes setnxLock in this process, then in the storage.
func (c *CaddyStorage) lockSetNX(ctx context.Context) (func(), error) {
	return c.lockBoth(ctx, &c.setnx, setnxLock)
}

// lockBoth takes name in local, then in the storage.
func (c *CaddyStorage) lockBoth(ctx context.Context, local *localLocks, name string) (func(), error) {
	unlockLocal, err := local.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := c.storage.Lock(ctx, name); err != nil {
		unlockLocal()
		return nil, fmt.Errorf("session: locking storage: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
			defer cancel()
			// A failed unlock leaves a lock that the storage treats as
			// stale after a while; nothing better can be done here.
			_ = c.storage.Unlock(ctx, name)
			unlockLocal()
		})
	}, nil
}

// load reads and opens the envelope at key.
func (c *CaddyStorage) load(ctx context.Context, key string) ([]byte, time.Time, error) {
	raw, err := c.storage.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, time.Time{}, ErrNotFound
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("session: loading from storage: %w", err)
	}
	return openEnvelope(raw)
}

// store seals value in an envelope and stores it at key.
func (c *CaddyStorage) store(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	var expires time.Time
	if ttl > 0 {
		expires = time.Now().Add(ttl)
	}
	if err := c.storage.Store(ctx, key, sealEnvelope(value, expires)); err != nil {
		return fmt.Errorf("session: writing to storage: %w", err)
	}
	return nil
}

// envelopeMagic starts every value CaddyStorage writes.
const envelopeMagic = "wxs1"

const envelopeHeader = len(envelopeMagic) + 8

// errNotEnvelope is returned for stored values CaddyStorage did not write.
var errNotEnvelope = errors.New("session: stored value is not a wxauth envelope")

func sealEnvelope(value []byte, expires time.Time) []byte {
	b := make([]byte, envelopeHeader, envelopeHeader+len(value))
	copy(b, envelopeMagic)
	var nanos int64
	if !expires.IsZero() {
		nanos = expires.UnixNano()
	}
	binary.BigEndian.PutUint64(b[len(envelopeMagic):], uint64(nanos))
	return append(b, value...)
}

func openEnvelope(b []byte) ([]byte, time.Time, error) {
	if len(b) < envelopeHeader || string(b[:len(envelopeMagic)]) != envelopeMagic {
		return nil, time.Time{}, errNotEnvelope
	}
	var expires time.Time
	if nanos := int64(binary.BigEndian.Uint64(b[len(envelopeMagic):])); nanos != 0 {
		expires = time.Unix(0, nanos)
	}
	return b[envelopeHeader:], expires, nil
}

// isExpired reports whether a value expiring at expires (zero = never) has
// expired at now.
func isExpired(expires, now time.Time) bool {
	return !expires.IsZero() && !now.Before(expires)
}

// Interface guard.
var _ Store = (*CaddyStorage)(nil)
