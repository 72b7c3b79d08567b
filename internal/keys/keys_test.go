package keys

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// countingStore counts the reads and writes that reach a store, and fails
// every call while down is set.
type countingStore struct {
	session.Store
	gets, sets atomic.Int32
	down       atomic.Bool
}

var errStoreDown = errors.New("store down")

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	if c.down.Load() {
		return nil, errStoreDown
	}
	return c.Store.Get(ctx, key)
}

func (c *countingStore) SetNX(ctx context.Context, key string, v []byte, ttl time.Duration) (bool, error) {
	c.sets.Add(1)
	if c.down.Load() {
		return false, errStoreDown
	}
	return c.Store.SetNX(ctx, key, v, ttl)
}

func (c *countingStore) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	c.sets.Add(1)
	if c.down.Load() {
		return errStoreDown
	}
	return c.Store.Set(ctx, key, v, ttl)
}

// wipes counts the wipes a Source reports.
type wipes struct{ n atomic.Int32 }

func (w *wipes) Wiped() { w.n.Add(1) }

// testConfig is the Config of generated keys over store, as the handler
// sets it up, on a fake clock.
func testConfig(store token.KV, clock *clock.Fake) Config {
	return Config{
		Token:  token.Config{Audience: "wxkeys", TTL: time.Hour},
		Store:  store,
		Prefix: "wxauth/wxkeys/keys",
		Alg:    token.HS256,
		Now:    clock.Now,
	}
}

func newSource(t *testing.T, cfg Config) *Source {
	t.Helper()
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeysAreReadOnlyAtProvision(t *testing.T) {
	store := &countingStore{Store: session.NewMemory()}
	clock := clock.NewFake()
	s := newSource(t, testConfig(store, clock))
	if store.sets.Load() != 0 {
		t.Fatal("provisioning wrote to the store")
	}
	if s.tokens.Load() != nil {
		t.Fatal("keys out of an empty store")
	}
	// The first use makes them.
	if _, err := s.Signer(); err != nil {
		t.Fatal(err)
	}
	if store.sets.Load() == 0 {
		t.Fatal("no key was stored on first use")
	}
	// Another instance provisioned now loads them, still read only.
	writes := store.sets.Load()
	other := newSource(t, testConfig(store, clock))
	if other.tokens.Load() == nil || store.sets.Load() != writes {
		t.Fatal("a second instance did not load the stored keys read only")
	}
}

// A token signed with a key made elsewhere (after a wipe) is accepted once
// the keys are read again; unknown key ids make at most one read a second.
func TestUnknownKeyIDReloadsAtMostOnceASecond(t *testing.T) {
	mem := session.NewMemory()
	store := &countingStore{Store: mem}
	clock := clock.NewFake()
	wiped := new(wipes)
	cfg := testConfig(store, clock)
	cfg.Wipes = wiped
	a := newSource(t, cfg)
	ta, err := a.Signer()
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
	b := newSource(t, testConfig(store, clock))
	tb, err := b.Signer()
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := tb.Issue("openid", "", "sid", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if wiped.n.Load() != 0 {
		t.Fatal("a wipe reported before A read the keys again")
	}
	clock.Advance(time.Second) // A's own first use read the store just now
	if _, _, err := a.Verify(tok); err != nil {
		t.Fatalf("A refuses B's token after reading the keys again: %v", err)
	}
	if n := wiped.n.Load(); n != 1 {
		t.Fatalf("A noticed the wipe %d times, want 1", n)
	}
	// Forged key ids cannot make A read the store more than once a second.
	forged := forgeKid(t, tok, "hs256-deadbeef")
	reads := store.gets.Load()
	for range 50 {
		_, _, _ = a.Verify(forged)
	}
	if n := store.gets.Load() - reads; n != 0 {
		t.Fatalf("%d store reads for forged key ids within a second, want 0", n)
	}
	clock.Advance(time.Second)
	_, _, _ = a.Verify(forged)
	if n := store.gets.Load() - reads; n == 0 {
		t.Fatal("no read after a second passed")
	}
	// A's own tokens, signed with the old key, still verify.
	if _, _, err := a.Verify(old); err != nil {
		t.Fatalf("A refuses its own token from before the wipe: %v", err)
	}
}

// While the store is down and no config of the app ever loaded keys,
// Signer and Verify answer ErrNotLoaded; a later config keeps the keys an
// earlier one loaded, through Last.
func TestStoreDownKeepsLastKeys(t *testing.T) {
	store := &countingStore{Store: session.NewMemory()}
	clock := clock.NewFake()
	store.down.Store(true)
	cfg := testConfig(store, clock)
	cfg.Last = new(Last)
	s := newSource(t, cfg)
	if _, err := s.Signer(); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("Signer with the store down: %v, want ErrNotLoaded", err)
	}
	if _, _, err := s.Verify("x.y.z"); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("Verify with the store down: %v, want ErrNotLoaded", err)
	}
	store.down.Store(false)
	clock.Advance(LoadEvery)
	t1, err := s.Signer()
	if err != nil {
		t.Fatalf("Signer with the store back: %v", err)
	}
	tok, _, err := t1.Issue("openid", "", "sid", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Last.Load() == nil {
		t.Fatal("the loaded keyring was not kept")
	}
	// A reload while the store is down.
	store.down.Store(true)
	next := newSource(t, cfg)
	if _, _, err := next.Verify(tok); err != nil {
		t.Fatalf("the next config refuses a token of the kept keys: %v", err)
	}
}

// Check notices a wiped store without any request: the key is made again
// and the wipe reported. Fixed keys need no check.
func TestCheckNoticesWipe(t *testing.T) {
	mem := session.NewMemory()
	clock := clock.NewFake()
	wiped := new(wipes)
	cfg := testConfig(mem, clock)
	cfg.Wipes = wiped
	s := newSource(t, cfg)
	if err := s.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err != nil || wiped.n.Load() != 0 {
		t.Fatalf("a check of current keys: %v, %d wipes", err, wiped.n.Load())
	}
	if err := mem.Delete(context.Background(), "wxauth/wxkeys/keys/hs256"); err != nil {
		t.Fatal(err)
	}
	s.Gap()
	if wiped.n.Load() != 1 {
		t.Fatalf("%d wipes reported after a gap, want 1", wiped.n.Load())
	}
	if err := s.Check(context.Background()); err != nil || wiped.n.Load() != 1 {
		t.Fatalf("a check after the keys were made again: %v, %d wipes", err, wiped.n.Load())
	}
	fixed := newSource(t, Config{Token: token.Config{Audience: "wxkeys", TTL: time.Hour},
		Fixed: []FixedKey{{Key: base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))}}})
	if fixed.Generated() || fixed.Check(context.Background()) != nil {
		t.Fatal("fixed keys are checked in the store")
	}
	if t1, err := fixed.Signer(); err != nil || t1.Keyring().Signing().ID != "k1" {
		t.Fatalf("fixed keys: %v", err)
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

// sealedWith returns raw sealed with a key made of b, as a deployment with
// its own app_secret seals the store.
func sealedWith(t *testing.T, raw session.Store, b byte) session.Store {
	t.Helper()
	s, err := session.Sealed(raw, bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Two deployments with different app_secrets on one store replace each
// other's keys: that is logged as a shared store, not as a wipe, which
// keeps its own message.
func TestSharedStoreIsNotCalledAWipe(t *testing.T) {
	raw := session.NewMemory()
	clock := clock.NewFake()
	core, logs := observer.New(zap.WarnLevel)
	wiped := new(wipes)
	cfg := testConfig(sealedWith(t, raw, 1), clock)
	cfg.Logger, cfg.Wipes = zap.New(core), wiped
	a := newSource(t, cfg)
	if err := a.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	// B, sealing with another key, takes the record over.
	b := newSource(t, testConfig(sealedWith(t, raw, 2), clock))
	if err := b.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if wiped.n.Load() != 1 {
		t.Fatalf("%d lost keys reported, want 1", wiped.n.Load())
	}
	if got := logs.FilterMessageSnippet("wiped").Len(); got != 0 {
		t.Fatalf("a shared store logged as a wipe: %v", logs.All())
	}
	if logs.FilterMessage(SharedStoreMessage).Len() != 1 {
		t.Fatalf("no shared-store warning: %v", logs.All())
	}
	for _, want := range []string{"another deployment may share this store", "key_prefix", "app_secret"} {
		if !strings.Contains(SharedStoreMessage, want) {
			t.Errorf("the warning does not say %q", want)
		}
	}

	// A real wipe (the record gone) is still called one.
	if err := raw.Delete(context.Background(), "wxauth/wxkeys/keys/hs256"); err != nil {
		t.Fatal(err)
	}
	if err := a.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if logs.FilterMessageSnippet("wiped?").Len() != 1 || logs.FilterMessage(SharedStoreMessage).Len() != 1 {
		t.Fatalf("a wipe after a shared store: %v", logs.All())
	}
}
