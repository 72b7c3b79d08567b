package wxauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// countingStore counts the reads and writes that reach a store.
type countingStore struct {
	session.Store
	gets, sets atomic.Int32
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *countingStore) SetNX(ctx context.Context, key string, v []byte, ttl time.Duration) (bool, error) {
	c.sets.Add(1)
	return c.Store.SetNX(ctx, key, v, ttl)
}

func (c *countingStore) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	c.sets.Add(1)
	return c.Store.Set(ctx, key, v, ttl)
}

// keyHandler is a Handler with generated keys over store, as Provision
// sets it up, on a fake clock.
func keyHandler(t *testing.T, store session.Store, clock *fakeClock) *Handler {
	t.Helper()
	h := &Handler{Config: Config{AppID: "wxkeys", TokenTTL: 3600e9, SigningAlg: token.HS256}, store: store, prefix: "wxauth/wxkeys",
		app: &appState{ended: newEndedSet(clock.Now)}, logger: zap.NewNop()}
	if err := h.provisionTokens(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.keys.now = clock.Now
	return h
}

func TestKeysAreReadOnlyAtProvision(t *testing.T) {
	store := &countingStore{Store: session.NewMemory()}
	clock := newFakeClock()
	h := keyHandler(t, store, clock)
	if store.sets.Load() != 0 {
		t.Fatal("provisioning wrote to the store")
	}
	if h.keys.tokens.Load() != nil {
		t.Fatal("keys out of an empty store")
	}
	// The first use makes them.
	if _, err := h.signer(); err != nil {
		t.Fatal(err)
	}
	if store.sets.Load() == 0 {
		t.Fatal("no key was stored on first use")
	}
	// Another instance provisioned now loads them, still read only.
	writes := store.sets.Load()
	other := keyHandler(t, store, clock)
	if other.keys.tokens.Load() == nil || store.sets.Load() != writes {
		t.Fatal("a second instance did not load the stored keys read only")
	}
}

// A token signed with a key made elsewhere (after a wipe) is accepted once
// the keys are read again; unknown key ids make at most one read a second.
func TestUnknownKeyIDReloadsAtMostOnceASecond(t *testing.T) {
	mem := session.NewMemory()
	store := &countingStore{Store: mem}
	clock := newFakeClock()
	a := keyHandler(t, store, clock)
	ta, err := a.signer()
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := ta.Issue("openid", "", "sid", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The store is wiped; another instance makes a new key and signs.
	if err := mem.Delete(context.Background(), "wxauth/wxkeys/keys/hs256"); err != nil {
		t.Fatal(err)
	}
	b := keyHandler(t, store, clock)
	tb, err := b.signer()
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := tb.Issue("openid", "", "sid", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wiped := 0
	a.keys.onWipe = func() { wiped++ }
	clock.Advance(time.Second) // A's own first use read the store just now
	if _, _, err := a.verifyToken(tok); err != nil {
		t.Fatalf("A refuses B's token after reading the keys again: %v", err)
	}
	if wiped != 1 {
		t.Fatalf("A noticed the wipe %d times, want 1", wiped)
	}
	// Forged key ids cannot make A read the store more than once a second.
	forged := forgeKid(t, tok, "hs256-deadbeef")
	reads := store.gets.Load()
	for range 50 {
		_, _, _ = a.verifyToken(forged)
	}
	if n := store.gets.Load() - reads; n != 0 {
		t.Fatalf("%d store reads for forged key ids within a second, want 0", n)
	}
	clock.Advance(time.Second)
	_, _, _ = a.verifyToken(forged)
	if n := store.gets.Load() - reads; n == 0 {
		t.Fatal("no read after a second passed")
	}
	// A's own tokens, signed with the old key, still verify.
	if _, _, err := a.verifyToken(old); err != nil {
		t.Fatalf("A refuses its own token from before the wipe: %v", err)
	}
}

// forgeKid returns tok with another key id in its header.
func forgeKid(t *testing.T, tok, kid string) string {
	t.Helper()
	parts := strings.SplitN(tok, ".", 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var hdr map[string]any
	if err := json.Unmarshal(raw, &hdr); err != nil {
		t.Fatal(err)
	}
	hdr["kid"] = kid
	b, _ := json.Marshal(hdr)
	return base64.RawURLEncoding.EncodeToString(b) + "." + parts[1] + "." + parts[2]
}
