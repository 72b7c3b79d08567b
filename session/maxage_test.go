package session

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// ttlStore records the ttl of every Set, on top of a memory store.
type ttlStore struct {
	*Memory
	mu   sync.Mutex
	ttls map[string]time.Duration
}

func (s *ttlStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.mu.Lock()
	s.ttls[key] = ttl
	s.mu.Unlock()
	return s.Memory.Set(ctx, key, value, ttl)
}

func TestSessionMaxAge(t *testing.T) {
	ctx := context.Background()
	st := &ttlStore{Memory: NewMemory(), ttls: map[string]time.Duration{}}
	m := NewManager(st, "app")
	m.SetMaxAge(5 * time.Hour)
	// The memory store's own expiry runs on the real clock; the times here
	// stay far inside it.
	clock := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return clock }

	s, err := m.Create(ctx, "o-max", "", nil, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key := m.sessionKey(s.ID)
	if !s.Expires.Equal(clock.Add(2*time.Hour)) || st.ttls[key] != 2*time.Hour {
		t.Fatalf("created: expires %v, store ttl %v", s.Expires, st.ttls[key])
	}
	login := s.Created
	for _, step := range []struct {
		at      time.Duration // after login
		expires time.Duration // after login; 0: refused
	}{
		{time.Hour, 3 * time.Hour}, // an ordinary refresh
		{2*time.Hour + 30*time.Minute, 4*time.Hour + 30*time.Minute},
		{3*time.Hour + 30*time.Minute, 5 * time.Hour}, // capped: 2h would pass the limit
		{4 * time.Hour, 5 * time.Hour},                // capped again, never extended
		{5 * time.Hour, 0},                            // at the limit: over
	} {
		clock = login.Add(step.at)
		err := m.Extend(ctx, s, 2*time.Hour)
		if step.expires == 0 {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("at +%v: Extend = %v, want ErrNotFound", step.at, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("at +%v: %v", step.at, err)
		}
		want := login.Add(step.expires)
		if !s.Expires.Equal(want) || st.ttls[key] != want.Sub(clock) {
			t.Fatalf("at +%v: expires %v (store ttl %v), want %v (%v)", step.at, s.Expires, st.ttls[key], want, want.Sub(clock))
		}
		if got, err := m.Get(ctx, s.ID); err != nil || !got.Expires.Equal(want) {
			t.Fatalf("at +%v: stored %+v, %v", step.at, got, err)
		}
	}
	// A limit lowered after the login ends the session at the new limit.
	clock = login.Add(3 * time.Hour)
	m.SetMaxAge(3 * time.Hour)
	if _, err := m.Get(ctx, s.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("past a lowered limit: Get = %v", err)
	}
}

func TestSessionMaxAgeOnCreate(t *testing.T) {
	st := &ttlStore{Memory: NewMemory(), ttls: map[string]time.Duration{}}
	m := NewManager(st, "app")
	m.SetMaxAge(time.Hour)
	s, err := m.Create(context.Background(), "o-max", "", nil, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Expires.Equal(s.Created.Add(time.Hour)) || st.ttls[m.sessionKey(s.ID)] != time.Hour {
		t.Fatalf("expires %v after %v, store ttl %v", s.Expires, s.Created, st.ttls[m.sessionKey(s.ID)])
	}
}
