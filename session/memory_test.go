package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/session/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) session.Store { return session.NewMemory() })
}

func TestMemorySweep(t *testing.T) {
	ctx := context.Background()
	m := session.NewMemory()
	for key, ttl := range map[string]time.Duration{
		"short": time.Minute, "shorter": time.Second, "long": time.Hour, "forever": 0,
	} {
		if err := m.Set(ctx, key, []byte(key), ttl); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Sweep(time.Now()); n != 0 {
		t.Fatalf("Sweep(now) = %d, want 0", n)
	}
	if n := m.Sweep(time.Now().Add(2 * time.Minute)); n != 2 {
		t.Fatalf("Sweep(now+2m) = %d, want 2", n)
	}
	// Swept entries are gone even though their time has not come yet here.
	for _, key := range []string{"short", "shorter"} {
		if _, err := m.Get(ctx, key); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Get(%q) after Sweep: err = %v", key, err)
		}
	}
	for _, key := range []string{"long", "forever"} {
		if _, err := m.Get(ctx, key); err != nil {
			t.Fatalf("Get(%q) after Sweep: %v", key, err)
		}
	}
	if n := m.Sweep(time.Now().AddDate(100, 0, 0)); n != 1 {
		t.Fatalf("Sweep(now+100y) = %d, want 1 (the forever entry stays)", n)
	}
}

func TestMemoryCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := session.NewMemory()
	if _, err := m.Lock(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock with a cancelled context: err = %v", err)
	}
	if err := m.Set(ctx, "x", nil, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Set with a cancelled context: err = %v", err)
	}
}
