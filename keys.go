package wxauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/token"
)

// keyLoadTimeout bounds one load of generated keys, so an unreachable store
// delays startup or a request only briefly.
const keyLoadTimeout = 5 * time.Second

// keyLoadEvery is how often a request may make an instance read the keys
// from the store (a token with an unknown key id, or no keys yet), so that
// random key ids cannot flood the store.
const keyLoadEvery = time.Second

// errKeysNotLoaded answers while the generated keys could not be loaded.
var errKeysNotLoaded = apierr.New(http.StatusServiceUnavailable, "store_unavailable",
	"the signing keys are not loaded yet: the session store is not reachable; try again shortly").WithHeader("Retry-After", "1")

// fixedTokens returns the signer/verifier of the configured signing_keys.
func (h *Handler) fixedTokens(cfg token.Config) (*token.Tokens, error) {
	keys := make([]token.Key, 0, len(h.SigningKeys))
	for i, sk := range h.SigningKeys {
		secret, err := token.ParseSecret(sk.Key)
		if err != nil {
			return nil, fmt.Errorf("wxauth: signing_key %d: %w", i+1, err)
		}
		id := sk.ID
		if id == "" {
			id = "k" + strconv.Itoa(i+1)
		}
		keys = append(keys, token.Key{ID: id, Alg: token.HS256, Secret: secret})
	}
	ring, err := token.NewKeyring(keys...)
	if err != nil {
		return nil, fmt.Errorf("wxauth: signing_key: %w", err)
	}
	return token.New(cfg, ring)
}

// keySource holds the token signer/verifier of generated keys, kept in
// the store and shared by every instance. Provisioning only reads them (so
// `caddy validate` writes nothing); they are made on first use or when the
// wxauth app starts, and read again when a token names a key this instance
// does not know, e.g. one made elsewhere after the store was wiped.
type keySource struct {
	m      *token.Manager
	cfg    token.Config
	app    *appState
	now    func() time.Time
	logger *zap.Logger

	// onWipe runs when the store was found wiped under this instance.
	onWipe func()

	tokens   atomic.Pointer[token.Tokens]
	mu       sync.Mutex   // one load at a time
	lastLoad atomic.Int64 // unix nanos of the last load a request asked for
}

// load reads the keys (with create, making missing ones; with reload,
// re-reading those it knows) and installs them.
func (k *keySource) load(ctx context.Context, create, reload bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, keyLoadTimeout)
	defer cancel()
	var (
		ring *token.Keyring
		err  error
		prev string // the signing key before a reload
	)
	if t := k.tokens.Load(); t != nil && reload {
		prev = t.Keyring().Signing().ID
	}
	switch now := k.now(); {
	case reload && create:
		ring, err = k.m.Renew(ctx, now)
	case reload:
		ring, err = k.m.Reload(ctx, now)
	case create:
		ring, err = k.m.Keyring(ctx, now)
	default:
		ring, err = k.m.Load(ctx, now)
	}
	if err != nil {
		return err
	}
	if t := k.tokens.Load(); t != nil {
		t.SetKeyring(ring)
	} else {
		t, err := token.New(k.cfg, ring)
		if err != nil {
			return err
		}
		k.tokens.Store(t)
	}
	k.app.ring.Store(ring)
	if prev != "" && k.m.Lost(prev) {
		// The store lost the key this instance signed with: it was wiped,
		// sessions with it, and events may be lost too.
		k.logger.Warn("the store lost this app's signing key (wiped?); keys read again, cached tokens are confirmed in the store")
		if k.onWipe != nil {
			k.onWipe()
		}
	}
	return nil
}

// onDemand runs a load that a request asked for, at most once per
// keyLoadEvery across all requests; it reports whether one ran and succeeded.
func (k *keySource) onDemand(ctx context.Context, create, reload bool) bool {
	now := k.now().UnixNano()
	last := k.lastLoad.Load()
	if now-last < int64(keyLoadEvery) || !k.lastLoad.CompareAndSwap(last, now) {
		return false
	}
	if err := k.load(ctx, create, reload); err != nil {
		k.logger.Warn("loading signing keys from the store failed", zap.Error(err))
		return false
	}
	return true
}

// ready returns the signer/verifier, after any load another request started.
func (k *keySource) ready() *token.Tokens {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.tokens.Load()
}

// keyCheckEvery is how often the maintenance job checks that the store
// still holds this instance's signing key: one read.
const keyCheckEvery = 5 * time.Second

// maintain is the app's job: it makes the keys if there are none, keeps the
// ring current as keys rotate, notices a wiped store (its signing key gone
// or made again elsewhere), and retries while the store is down.
func (k *keySource) maintain(ctx context.Context, rotate time.Duration) {
	period := keyCheckEvery
	if rotate > 0 {
		period = max(min(rotate/10, keyCheckEvery), time.Second)
	}
	retry := time.Second
	for ctx.Err() == nil {
		wait := period
		if err := k.check(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			k.logger.Warn("loading signing keys from the store failed; retrying", zap.Error(err))
			wait, retry = retry, min(retry*2, 5*time.Second)
		} else {
			retry = time.Second
		}
		sleepCtx(ctx, wait)
	}
}

// check loads the keys if none are loaded, else makes sure the store still
// holds the signing key this instance knows; if not, it reads (or makes)
// the keys again, and load tells onWipe.
func (k *keySource) check(ctx context.Context) error {
	t := k.tokens.Load()
	if t == nil {
		return k.load(ctx, true, false)
	}
	cctx, cancel := context.WithTimeout(ctx, keyLoadTimeout)
	id, err := k.m.StoredSigningID(cctx, k.now())
	cancel()
	if err != nil {
		return err
	}
	if id != "" && slices.Contains(t.Keyring().IDs(), id) {
		return k.load(ctx, true, false) // rotation, without I/O when current
	}
	return k.load(ctx, true, true)
}

// provisionTokens sets up the signer/verifier from fixed keys, or from keys
// generated once per app_id and kept (and rotated) in the store. When the
// store cannot be reached, Caddy still starts: logins and token checks
// answer 503 until the keys are loaded.
func (h *Handler) provisionTokens(ctx context.Context) error {
	cfg := token.Config{Audience: h.AppID, TTL: time.Duration(h.TokenTTL)}
	h.keys = &keySource{cfg: cfg, app: h.app, now: time.Now, logger: h.logger}
	if len(h.SigningKeys) > 0 {
		t, err := h.fixedTokens(cfg)
		if err != nil {
			return err
		}
		h.keys.tokens.Store(t)
		return nil
	}
	h.keys.m = token.NewManager(token.ManagerConfig{
		KV:     h.store,
		Prefix: h.prefix + "/keys",
		Alg:    h.SigningAlg,
		Rotate: time.Duration(h.KeyRotation),
		TTL:    time.Duration(h.TokenTTL),
	})
	err := h.keys.load(ctx, false, false)
	switch {
	case err == nil, errors.Is(err, token.ErrNoKeys):
	default:
		// A reload while the store is down keeps the keys the previous
		// config of this app had loaded.
		ring := h.app.ring.Load()
		if ring == nil {
			h.logger.Warn("signing keys could not be loaded from the store; logins and token checks answer 503 until they are", zap.Error(err))
			break
		}
		t, err := token.New(cfg, ring)
		if err != nil {
			return err // a config error, not the store's
		}
		h.keys.tokens.Store(t)
	}
	return nil
}

// verifyToken checks a token with the current keys, reading them from the
// store again when the token names a key this instance does not know.
func (h *Handler) verifyToken(tok string) (*token.Claims, time.Duration, error) {
	t, err := h.signer()
	if err != nil {
		return nil, 0, err
	}
	c, err := t.Verify(tok)
	if errors.Is(err, token.ErrUnknownKey) && h.keys.m != nil && h.keys.onDemand(context.Background(), false, true) {
		c, err = t.Verify(tok)
	}
	return c, t.Config().Leeway, err
}

// signer returns the token signer/verifier, making or loading the keys
// first when there are none yet; errKeysNotLoaded when the store fails.
func (h *Handler) signer() (*token.Tokens, error) {
	if t := h.keys.tokens.Load(); t != nil {
		return t, nil
	}
	if h.keys.m != nil {
		h.keys.onDemand(context.Background(), true, false)
		if t := h.keys.ready(); t != nil {
			return t, nil
		}
	}
	return nil, errKeysNotLoaded
}
