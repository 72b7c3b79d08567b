package session_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/session/storetest"
)

func sealed(t *testing.T, s session.Store, b byte) session.Store {
	t.Helper()
	x, err := session.Sealed(s, bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestSealedStoreSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) session.Store { return sealed(t, session.NewMemory(), 1) })
}

func TestSealedStore(t *testing.T) {
	ctx := context.Background()
	raw := session.NewMemory()
	s := sealed(t, raw, 1)
	const secret = "tiihtNczf5v6AKRyjwEUhQ=="
	if err := s.Set(ctx, "app/session_keys/oAlice", []byte(secret), time.Hour); err != nil {
		t.Fatal(err)
	}
	stored, _ := raw.Get(ctx, "app/session_keys/oAlice")
	if bytes.Contains(stored, []byte(secret)) || bytes.Contains(stored, []byte("tiihtNczf5v6")) {
		t.Fatalf("stored in the clear: %q", stored)
	}
	if got, err := s.Get(ctx, "app/session_keys/oAlice"); err != nil || string(got) != secret {
		t.Fatalf("Get = %q, %v", got, err)
	}
	// Another instance with the same key reads it; one with another key does not.
	if got, _ := sealed(t, raw, 1).Get(ctx, "app/session_keys/oAlice"); string(got) != secret {
		t.Fatalf("same key: %q", got)
	}
	// It reads as absent, yet tells that a value is there (ErrUnsealed),
	// unlike a value that is really absent.
	if _, err := sealed(t, raw, 2).Get(ctx, "app/session_keys/oAlice"); !errors.Is(err, session.ErrNotFound) || !errors.Is(err, session.ErrUnsealed) {
		t.Fatalf("other key: %v", err)
	}
	if _, err := s.Get(ctx, "app/session_keys/nobody"); !errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrUnsealed) {
		t.Fatalf("absent: %v", err)
	}
	// A value moved to another key, or written unsealed, does not open.
	_ = raw.Set(ctx, "app/session_keys/oMallory", stored, 0)
	_ = raw.Set(ctx, "app/session_keys/oBob", []byte(secret), 0)
	for _, k := range []string{"app/session_keys/oMallory", "app/session_keys/oBob"} {
		if _, err := s.Get(ctx, k); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("%s opened: %v", k, err)
		}
	}
	// Sealing is randomized.
	_ = s.Set(ctx, "app/session_keys/oAlice", []byte(secret), time.Hour)
	if again, _ := raw.Get(ctx, "app/session_keys/oAlice"); bytes.Equal(again, stored) {
		t.Fatal("sealing is deterministic")
	}
	if _, err := session.Sealed(raw, []byte("short")); err == nil {
		t.Fatal("short key accepted")
	}
}

// After the sealing key changes (the app secret was reset), SetNX treats
// values that no longer open as absent, and instances still agree.
func TestSealedSetNXAfterKeyChange(t *testing.T) {
	ctx := context.Background()
	raw := session.NewMemory()
	if ok, err := sealed(t, raw, 1).SetNX(ctx, "app/keys/hs256", []byte("old"), 0); !ok || err != nil {
		t.Fatalf("first SetNX: %v %v", ok, err)
	}
	var wg sync.WaitGroup
	wins := make(chan bool, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ok, err := sealed(t, raw, 2).SetNX(ctx, "app/keys/hs256", []byte{byte('a' + i)}, 0)
			if err != nil {
				t.Error(err)
			}
			wins <- ok
		}(i)
	}
	wg.Wait()
	close(wins)
	n := 0
	for ok := range wins {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d instances won SetNX over a stale value, want 1", n)
	}
	if ok, _ := sealed(t, raw, 2).SetNX(ctx, "app/keys/hs256", []byte("z"), 0); ok {
		t.Fatal("SetNX replaced a value that opens")
	}
}
