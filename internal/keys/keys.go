// Package keys provides the token signer/verifier of an app: either fixed
// keys from the config, or keys generated once per app and kept (and
// rotated) in the shared store, which every instance loads.
//
// Generated keys are only read when a Source is made (so `caddy validate`
// writes nothing); they are made on first use or by Maintain, and read
// again when a token names a key this instance does not know, e.g. one
// made elsewhere after the store was wiped.
package keys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// LoadTimeout bounds one load of generated keys, so an unreachable store
// delays startup or a request only briefly.
const LoadTimeout = 5 * time.Second

// LoadEvery is how often a request may make an instance read the keys from
// the store (a token with an unknown key id, or no keys yet), so that
// random key ids cannot flood the store.
const LoadEvery = time.Second

// CheckEvery is how often Maintain checks that the store still holds this
// instance's signing key: one read.
const CheckEvery = 5 * time.Second

// ErrNotLoaded is returned while the generated keys could not be loaded:
// the store is not reachable.
var ErrNotLoaded = errors.New("keys: the signing keys are not loaded: the store is not reachable")

// Wipes is told when the store was found wiped under this instance: its
// signing key gone, sessions and events with it.
type Wipes interface{ Wiped() }

// Last holds the last keyring a Source loaded from the store. Sources of
// successive configs of one app share it, so a config loaded while the
// store is down keeps the keys the previous one had. The zero value holds
// none.
type Last struct{ ring atomic.Pointer[token.Keyring] }

// Load returns the last keyring stored, or nil.
func (l *Last) Load() *token.Keyring { return l.ring.Load() }

// Store keeps ring as the last one loaded.
func (l *Last) Store(ring *token.Keyring) { l.ring.Store(ring) }

// FixedKey is one configured signing key.
type FixedKey struct {
	// ID is the key id, sent as the token's kid header; "" means "k<index>".
	ID string
	// Key is the HS256 secret, base64 (std or url alphabet).
	Key string
}

// Config configures a Source.
type Config struct {
	// Token configures the signer/verifier (audience, TTL, ...).
	Token token.Config
	// Fixed keys, when any, are the only ones used: no store is read.
	Fixed []FixedKey

	// Store keeps generated keys; required without Fixed.
	Store token.KV
	// Prefix of the key records in Store, e.g. "wxauth/<appid>/keys".
	Prefix string
	// Alg of generated keys: HS256 (default) or EdDSA.
	Alg string
	// Rotate is the rotation period of generated keys; 0 never rotates.
	Rotate time.Duration
	// Last is shared by the Sources of one app across config reloads; may
	// be nil.
	Last *Last
	// Wipes is told when the store was found wiped; may be nil.
	Wipes Wipes

	// Now is the clock; nil means clock.Real.
	Now clock.Clock
	// Logger gets warnings about the store; nil means none.
	Logger *zap.Logger
}

// Source holds the token signer/verifier of an app. It is safe for
// concurrent use.
type Source struct {
	m      *token.Manager // nil with fixed keys
	kv     *watchedKV     // the store of m
	cfg    token.Config
	rotate time.Duration
	last   *Last
	wipes  Wipes
	now    clock.Clock
	logger *zap.Logger

	tokens   atomic.Pointer[token.Tokens]
	mu       sync.Mutex   // one load at a time
	lastLoad atomic.Int64 // unix nanos of the last load a request asked for
}

// New returns the Source of cfg. With fixed keys it is ready at once; a
// bad key is an error. Generated keys are read from the store, never made:
// when there are none yet, they are made on first use or by Maintain; when
// the store cannot be reached, the keys of cfg.Last are used, or none, and
// Signer and Verify return ErrNotLoaded until they are loaded.
func New(ctx context.Context, cfg Config) (*Source, error) {
	s := &Source{cfg: cfg.Token, rotate: cfg.Rotate, last: cfg.Last, wipes: cfg.Wipes, now: cfg.Now, logger: cfg.Logger}
	if s.now == nil {
		s.now = clock.Real
	}
	if s.logger == nil {
		s.logger = zap.NewNop()
	}
	if s.last == nil {
		s.last = new(Last)
	}
	if len(cfg.Fixed) > 0 {
		t, err := fixedTokens(cfg.Token, cfg.Fixed)
		if err != nil {
			return nil, err
		}
		s.tokens.Store(t)
		return s, nil
	}
	s.kv = &watchedKV{KV: cfg.Store}
	s.m = token.NewManager(token.ManagerConfig{
		KV:     s.kv,
		Prefix: cfg.Prefix,
		Alg:    cfg.Alg,
		Rotate: cfg.Rotate,
		TTL:    cfg.Token.TTL,
	})
	err := s.load(ctx, false, false)
	switch {
	case err == nil, errors.Is(err, token.ErrNoKeys):
	default:
		// A reload while the store is down keeps the keys the previous
		// config of this app had loaded.
		ring := s.last.Load()
		if ring == nil {
			s.logger.Warn("signing keys could not be loaded from the store; logins and token checks answer 503 until they are", zap.Error(err))
			break
		}
		t, err := token.New(cfg.Token, ring)
		if err != nil {
			return nil, err // a config error, not the store's
		}
		s.tokens.Store(t)
	}
	return s, nil
}

// fixedTokens returns the signer/verifier of the configured signing_keys.
func fixedTokens(cfg token.Config, fixed []FixedKey) (*token.Tokens, error) {
	keys := make([]token.Key, 0, len(fixed))
	for i, sk := range fixed {
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

// Generated reports whether the keys are generated and kept in the store,
// so that Maintain has work to do.
func (s *Source) Generated() bool { return s.m != nil }

// Signer returns the token signer/verifier, making or loading the keys
// first when there are none yet; ErrNotLoaded when the store fails.
func (s *Source) Signer() (*token.Tokens, error) {
	if t := s.tokens.Load(); t != nil {
		return t, nil
	}
	if s.m != nil {
		s.onDemand(context.Background(), true, false)
		if t := s.ready(); t != nil {
			return t, nil
		}
	}
	return nil, ErrNotLoaded
}

// Verify checks a token with the current keys, reading them from the store
// again when the token names a key this instance does not know. It returns
// the token's claims and the leeway its expiry was checked with.
func (s *Source) Verify(tok string) (*token.Claims, time.Duration, error) {
	t, err := s.Signer()
	if err != nil {
		return nil, 0, err
	}
	c, err := t.Verify(tok)
	if errors.Is(err, token.ErrUnknownKey) && s.m != nil && s.onDemand(context.Background(), false, true) {
		c, err = t.Verify(tok)
	}
	return c, t.Config().Leeway, err
}

// load reads the keys (with create, making missing ones; with reload,
// re-reading those it knows) and installs them.
func (s *Source) load(ctx context.Context, create, reload bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, LoadTimeout)
	defer cancel()
	var (
		ring *token.Keyring
		err  error
		prev string // the signing key before a reload
	)
	if t := s.tokens.Load(); t != nil && reload {
		prev = t.Keyring().Signing().ID
	}
	switch now := s.now(); {
	case reload && create:
		ring, err = s.m.Renew(ctx, now)
	case reload:
		ring, err = s.m.Reload(ctx, now)
	case create:
		ring, err = s.m.Keyring(ctx, now)
	default:
		ring, err = s.m.Load(ctx, now)
	}
	if err != nil {
		return err
	}
	if t := s.tokens.Load(); t != nil {
		t.SetKeyring(ring)
	} else {
		t, err := token.New(s.cfg, ring)
		if err != nil {
			return err
		}
		s.tokens.Store(t)
	}
	s.last.Store(ring)
	foreign := s.kv.unsealed.Swap(false)
	if prev != "" && s.m.Lost(prev) {
		// The store lost the key this instance signed with: it was wiped,
		// sessions with it, and events may be lost too. When the store held
		// a key that does not open with this app's store key, the likelier
		// cause is another deployment sealing with another app_secret.
		if foreign {
			s.logger.Warn(SharedStoreMessage)
		} else {
			s.logger.Warn("the store lost this app's signing key (wiped?); keys read again, cached tokens are confirmed in the store")
		}
		if s.wipes != nil {
			s.wipes.Wiped()
		}
	}
	return nil
}

// SharedStoreMessage is logged instead of the wipe warning when the store
// held this app's signing key sealed with another key.
const SharedStoreMessage = "the store holds this app's signing key sealed with another key: " +
	"another deployment may share this store (same app_id and key_prefix) with a different app_secret, " +
	"and each replaces the other's keys, logging users out; give each deployment its own key_prefix, " +
	"or the same app_secret; keys read again, cached tokens are confirmed in the store"

// watchedKV notes when a read finds a value that does not open with the
// store's key (session.ErrUnsealed), as against an absent one.
type watchedKV struct {
	token.KV
	unsealed atomic.Bool
}

func (w *watchedKV) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := w.KV.Get(ctx, key)
	if errors.Is(err, session.ErrUnsealed) {
		w.unsealed.Store(true)
	}
	return b, err
}

// onDemand runs a load that a request asked for, at most once per
// LoadEvery across all requests; it reports whether one ran and succeeded.
func (s *Source) onDemand(ctx context.Context, create, reload bool) bool {
	now := s.now().UnixNano()
	last := s.lastLoad.Load()
	if now-last < int64(LoadEvery) || !s.lastLoad.CompareAndSwap(last, now) {
		return false
	}
	if err := s.load(ctx, create, reload); err != nil {
		s.logger.Warn("loading signing keys from the store failed", zap.Error(err))
		return false
	}
	return true
}

// ready returns the signer/verifier, after any load another request started.
func (s *Source) ready() *token.Tokens {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens.Load()
}

// Maintain is the background job of generated keys, until ctx ends: it
// makes the keys if there are none, keeps the ring current as keys rotate,
// notices a wiped store (its signing key gone or made again elsewhere),
// and retries while the store is down. With fixed keys it returns at once.
func (s *Source) Maintain(ctx context.Context) {
	if s.m == nil {
		return
	}
	period := CheckEvery
	if s.rotate > 0 {
		period = max(min(s.rotate/10, CheckEvery), time.Second)
	}
	retry := time.Second
	for ctx.Err() == nil {
		wait := period
		if err := s.Check(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.logger.Warn("loading signing keys from the store failed; retrying", zap.Error(err))
			wait, retry = retry, min(retry*2, 5*time.Second)
		} else {
			retry = time.Second
		}
		clock.Sleep(ctx, wait)
	}
}

// Check loads the keys if none are loaded, else makes sure the store still
// holds the signing key this instance knows; if not, it reads (or makes)
// the keys again and tells Wipes. With fixed keys it does nothing.
func (s *Source) Check(ctx context.Context) error {
	if s.m == nil {
		return nil
	}
	t := s.tokens.Load()
	if t == nil {
		return s.load(ctx, true, false)
	}
	cctx, cancel := context.WithTimeout(ctx, LoadTimeout)
	s.kv.unsealed.Store(false)
	id, err := s.m.StoredSigningID(cctx, s.now())
	cancel()
	if err != nil {
		return err
	}
	if id != "" && slices.Contains(t.Keyring().IDs(), id) {
		return s.load(ctx, true, false) // rotation, without I/O when current
	}
	return s.load(ctx, true, true)
}

// Gap is told that the app's change feed was reset: the store may have
// been wiped, keys with it, so they are checked at once.
func (s *Source) Gap() { _ = s.Check(context.Background()) }
