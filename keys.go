package wxauth

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// keyLoadTimeout bounds the first load of generated keys at provision, so
// an unreachable store delays startup only briefly.
const keyLoadTimeout = 5 * time.Second

// provisionTokens sets up the signer/verifier from fixed keys, or from keys
// generated once per app_id and kept (and rotated) in the store. When the
// store cannot be reached, Caddy still starts: logins and token checks
// answer 503 until a background loop has loaded the keys.
func (h *Handler) provisionTokens(ctx caddy.Context, store session.Store, prefix string) error {
	cfg := token.Config{Audience: h.AppID, TTL: time.Duration(h.TokenTTL)}
	if len(h.SigningKeys) > 0 {
		keys := make([]token.Key, 0, len(h.SigningKeys))
		for i, sk := range h.SigningKeys {
			secret, err := token.ParseSecret(sk.Key)
			if err != nil {
				return fmt.Errorf("wxauth: signing_key %d: %w", i+1, err)
			}
			id := sk.ID
			if id == "" {
				id = "k" + strconv.Itoa(i+1)
			}
			keys = append(keys, token.Key{ID: id, Alg: "HS256", Secret: secret})
		}
		ring, err := token.NewKeyring(keys...)
		if err != nil {
			return fmt.Errorf("wxauth: signing_key: %w", err)
		}
		t, err := token.New(cfg, ring)
		if err != nil {
			return err
		}
		h.tokens.Store(t)
		return nil
	}

	h.keys = token.NewManager(token.ManagerConfig{
		KV:     store,
		Prefix: prefix + "/keys",
		Alg:    h.SigningAlg,
		Rotate: time.Duration(h.KeyRotation),
		TTL:    time.Duration(h.TokenTTL),
	})
	kctx, cancel := context.WithTimeout(ctx, keyLoadTimeout)
	defer cancel()
	ring, err := h.keys.Keyring(kctx, time.Now())
	if err != nil {
		// A reload while the store is down keeps the keys the previous
		// config of this app had loaded.
		if ring = h.app.ring.Load(); ring == nil {
			h.logger.Warn("signing keys could not be loaded from the store; logins and token checks answer 503 until they are", zap.Error(err))
		}
	}
	if ring != nil {
		t, err := token.New(cfg, ring)
		if err != nil {
			return err // a config error, not the store's
		}
		h.tokens.Store(t)
		h.app.ring.Store(ring)
	}
	if err != nil || h.KeyRotation > 0 {
		go h.maintainKeys(ctx, cfg)
	}
	return nil
}

// maintainKeys loads the generated keys until it succeeds, then, with
// key_rotation, swaps in the current keyring, until the config is unloaded.
func (h *Handler) maintainKeys(ctx caddy.Context, cfg token.Config) {
	every := time.Second
	if h.KeyRotation > 0 {
		every = max(min(time.Duration(h.KeyRotation)/10, time.Minute), time.Second)
	}
	retry := time.Second
	t := time.NewTimer(retry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			kctx, cancel := context.WithTimeout(ctx, keyLoadTimeout)
			ring, err := h.keys.Keyring(kctx, now)
			cancel()
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				h.logger.Warn("loading signing keys from the store failed; retrying", zap.Error(err))
				retry = min(retry*2, 5*time.Second)
				t.Reset(retry)
				continue
			case h.tokens.Load() == nil:
				tk, err := token.New(cfg, ring)
				if err != nil {
					h.logger.Error("signing keys", zap.Error(err))
					return
				}
				h.tokens.Store(tk)
				h.logger.Info("signing keys loaded from the store")
			default:
				h.tokens.Load().SetKeyring(ring)
			}
			h.app.ring.Store(ring)
			if h.KeyRotation == 0 {
				return
			}
			retry = time.Second
			t.Reset(every)
		}
	}
}

// errKeysNotLoaded answers while the generated keys could not be loaded.
var errKeysNotLoaded = newError(http.StatusServiceUnavailable, "store_unavailable",
	"the signing keys are not loaded yet: the session store is not reachable; try again shortly").with("Retry-After", "1")

// verifyToken checks a token with the current keys.
func (h *Handler) verifyToken(tok string) (*token.Claims, time.Duration, error) {
	t := h.tokens.Load()
	if t == nil {
		return nil, 0, errKeysNotLoaded
	}
	c, err := t.Verify(tok)
	return c, t.Config().Leeway, err
}

// signer returns the token signer/verifier, or errKeysNotLoaded.
func (h *Handler) signer() (*token.Tokens, error) {
	if t := h.tokens.Load(); t != nil {
		return t, nil
	}
	return nil, errKeysNotLoaded
}
