package token_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// Load never writes; a wipe of the store makes a new key with a new id,
// and an instance that reloads keeps verifying the old key's tokens.
func TestManagerLoadAndReload(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	store := session.NewMemory()
	cfg := token.ManagerConfig{KV: store, Prefix: "wxauth/app/keys", TTL: time.Hour}

	if _, err := token.NewManager(cfg).Load(ctx, now); !errors.Is(err, token.ErrNoKeys) {
		t.Fatalf("Load on an empty store: %v, want ErrNoKeys", err)
	}
	if _, err := store.Get(ctx, "wxauth/app/keys/hs256"); err == nil {
		t.Fatal("Load wrote a key")
	}

	a, b := token.NewManager(cfg), token.NewManager(cfg)
	ra, err := a.Keyring(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Load(ctx, now)
	if err != nil || rb.Signing().ID != ra.Signing().ID {
		t.Fatalf("b loads %v, %v; want a's key %s", rb, err, ra.Signing().ID)
	}
	oldTok := issue(t, ra, now)

	// The store is wiped and b makes a new key: another id.
	if err := store.Delete(ctx, "wxauth/app/keys/hs256"); err != nil {
		t.Fatal(err)
	}
	b2 := token.NewManager(cfg)
	rb2, err := b2.Keyring(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if rb2.Signing().ID == ra.Signing().ID {
		t.Fatalf("a key made again has the old id %s", ra.Signing().ID)
	}
	newTok := issue(t, rb2, now)

	// a reloads on the unknown id: it verifies both, and signs with the new key.
	ra2, err := a.Reload(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if ra2.Signing().ID != rb2.Signing().ID {
		t.Fatalf("a signs with %s after the reload, want %s", ra2.Signing().ID, rb2.Signing().ID)
	}
	for name, tok := range map[string]string{"old": oldTok, "new": newTok} {
		if !verifies(ra2, tok) {
			t.Fatalf("a refuses the %s key's token after the reload", name)
		}
	}
	// Renew after another wipe makes a key again, and keeps the others.
	if err := store.Delete(ctx, "wxauth/app/keys/hs256"); err != nil {
		t.Fatal(err)
	}
	ra3, err := a.Renew(ctx, now)
	if err != nil || ra3.Signing().ID == ra2.Signing().ID || !verifies(ra3, oldTok) || !verifies(ra3, newTok) {
		t.Fatalf("renew after a wipe: %v %v", ra3.IDs(), err)
	}
	if _, err := store.Get(ctx, "wxauth/app/keys/hs256"); err != nil {
		t.Fatalf("renew did not store the new key: %v", err)
	}
	// The old key stops verifying once its tokens have expired.
	later, err := a.Reload(ctx, now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(later.IDs()) != 1 || later.Signing().ID != ra3.Signing().ID {
		t.Fatalf("ring after the old tokens expired: %v", later.IDs())
	}
}

func issue(t *testing.T, r *token.Keyring, now time.Time) string {
	t.Helper()
	tk, err := token.New(token.Config{Audience: "app", TTL: time.Hour}, r)
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := tk.Issue("openid", "", "sid", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func verifies(r *token.Keyring, tok string) bool {
	tk, _ := token.New(token.Config{Audience: "app", TTL: time.Hour}, r)
	_, err := tk.Verify(tok)
	return err == nil
}
