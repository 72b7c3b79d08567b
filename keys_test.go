package wxauth

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/internal/guard"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/session/storetest"
	"github.com/wxauth/caddy-wxauth/token"
)

// keyHandler is a Handler with generated keys over store, as Provision
// sets it up. The key source's own behaviour is tested in internal/keys.
func keyHandler(t *testing.T, store session.Store, now clock.Clock) *Handler {
	t.Helper()
	ended := guard.NewEnded(now)
	h := &Handler{Config: Config{AppID: "wxkeys", TokenTTL: 3600e9, SigningAlg: token.HS256}, store: store, prefix: "wxauth/wxkeys",
		app: &appState{ended: ended, changes: newChanges(nil, ended, time.Hour, now, zap.NewNop())}, logger: zap.NewNop()}
	if err := h.provisionTokens(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

// The handler answers 503 store_unavailable while no keys could be
// loaded; the key source and the change feed tell each other of a wiped
// store and of a gap, until the handler releases the app.
func TestKeysWiring(t *testing.T) {
	mem := session.NewMemory()
	store := &storetest.Failing{Store: mem}
	store.Down.Store(true)
	clk := clock.NewFake()
	h := keyHandler(t, store, clk.Now)
	if _, err := h.signer(); !errors.Is(err, errKeysNotLoaded) || errKeysNotLoaded.Status != http.StatusServiceUnavailable || errKeysNotLoaded.Code != "store_unavailable" {
		t.Fatalf("signer with the store down: %v, want 503 store_unavailable", err)
	}
	if _, _, err := h.verifyToken("x.y.z"); !errors.Is(err, errKeysNotLoaded) {
		t.Fatalf("verifyToken with the store down: %v, want errKeysNotLoaded", err)
	}
	// A gap in the feed makes the keys be checked: made, here.
	store.Down.Store(false)
	const record = "wxauth/wxkeys/keys/hs256"
	fl := h.app.changes.Follower()
	fl.Gap()
	if _, err := mem.Get(context.Background(), record); err != nil {
		t.Fatalf("a gap did not make the key source check the keys: %v", err)
	}
	if _, err := h.signer(); err != nil {
		t.Fatal(err)
	}
	// A wipe the key source finds makes the feed confirm cached tokens again.
	gapAt := h.app.changes.LastGap()
	clk.Advance(time.Second)
	if err := mem.Delete(context.Background(), record); err != nil {
		t.Fatal(err)
	}
	if err := h.keys.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.app.changes.LastGap() <= gapAt {
		t.Fatal("a wiped store was not told to the change feed")
	}
	// Released, the handler's keys hear of no more gaps.
	if err := mem.Delete(context.Background(), record); err != nil {
		t.Fatal(err)
	}
	h.unshare()
	fl.Gap()
	if _, err := mem.Get(context.Background(), record); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("a released handler's keys still checked on a gap: %v", err)
	}
}
