package session

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestSealedSessionKeys(t *testing.T) {
	ctx := context.Background()
	store := NewMemory()
	key := bytes.Repeat([]byte{7}, 32)
	m := NewManager(store, "wxauth/app")
	if err := m.SealSessionKeys(key); err != nil {
		t.Fatal(err)
	}
	const sk = "tiihtNczf5v6AKRyjwEUhQ=="
	if err := m.SetSessionKey(ctx, "oAlice", sk, 0); err != nil {
		t.Fatal(err)
	}
	raw, _ := store.Get(ctx, "wxauth/app/session_keys/oAlice")
	if bytes.Contains(raw, []byte(sk)) || bytes.Contains(raw, []byte("tiihtNczf5v6")) {
		t.Fatalf("session_key stored in the clear: %q", raw)
	}
	if got, err := m.SessionKey(ctx, "oAlice"); err != nil || got != sk {
		t.Fatalf("SessionKey = %q, %v", got, err)
	}

	// Another instance with the same key reads it; one with another key, or
	// no key, does not.
	same := NewManager(store, "wxauth/app")
	_ = same.SealSessionKeys(key)
	if got, _ := same.SessionKey(ctx, "oAlice"); got != sk {
		t.Fatalf("second instance got %q", got)
	}
	other := NewManager(store, "wxauth/app")
	_ = other.SealSessionKeys(bytes.Repeat([]byte{8}, 32))
	if _, err := other.SessionKey(ctx, "oAlice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another key: %v", err)
	}

	// A sealed value copied to another user's entry does not open.
	_ = store.Set(ctx, "wxauth/app/session_keys/oMallory", raw, 0)
	if _, err := m.SessionKey(ctx, "oMallory"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("moved value opened: %v", err)
	}
	// A plaintext value (written without sealing) is not trusted.
	_ = store.Set(ctx, "wxauth/app/session_keys/oBob", []byte(sk), 0)
	if _, err := m.SessionKey(ctx, "oBob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("plaintext value accepted: %v", err)
	}
	// Two seals of one key differ (random nonce).
	_ = m.SetSessionKey(ctx, "oAlice", sk, 0)
	again, _ := store.Get(ctx, "wxauth/app/session_keys/oAlice")
	if bytes.Equal(raw, again) {
		t.Fatal("sealing is deterministic")
	}
	if err := m.SealSessionKeys([]byte("short")); err == nil {
		t.Fatal("short key accepted")
	}
}
