package session

import (
	"bytes"
	"context"
	"sync"
	"time"
)

// Memory is a Store that lives in the process's memory. Its state is lost on
// restart and not shared between instances, so it suits tests and
// single-process deployments only. Expired entries read as absent; Sweep
// frees their memory.
type Memory struct {
	mu      sync.Mutex
	entries map[string]memEntry
	locks   localLocks
}

// memEntry is one stored value; a zero expires means it never expires.
type memEntry struct {
	value   []byte
	expires time.Time
}

func (e memEntry) expired(now time.Time) bool { return isExpired(e.expires, now) }

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory {
	return &Memory{entries: make(map[string]memEntry)}
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	e, ok := m.entries[key]
	m.mu.Unlock()
	if !ok || e.expired(time.Now()) {
		return nil, ErrNotFound
	}
	// Stored slices are never mutated, but the caller may mutate its copy.
	return bytes.Clone(e.value), nil
}

// Set implements Store.
func (m *Memory) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e := newMemEntry(value, ttl)
	m.mu.Lock()
	m.entries[key] = e
	m.mu.Unlock()
	return nil
}

// SetNX implements Store.
func (m *Memory) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	e := newMemEntry(value, ttl)
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.entries[key]; ok && !old.expired(time.Now()) {
		return false, nil
	}
	m.entries[key] = e
	return true, nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.entries, key)
	m.mu.Unlock()
	return nil
}

// Lock implements Store. The lock is only process-wide.
func (m *Memory) Lock(ctx context.Context, name string) (func(), error) {
	return m.locks.lock(ctx, name)
}

// Sweep drops the entries that have expired at now and reports how many.
func (m *Memory) Sweep(now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, e := range m.entries {
		if e.expired(now) {
			delete(m.entries, k)
			n++
		}
	}
	return n
}

func newMemEntry(value []byte, ttl time.Duration) memEntry {
	e := memEntry{value: bytes.Clone(value)}
	if e.value == nil {
		e.value = []byte{}
	}
	if ttl > 0 {
		e.expires = time.Now().Add(ttl)
	}
	return e
}

// Interface guard.
var _ Store = (*Memory)(nil)
