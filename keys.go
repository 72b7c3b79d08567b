package wxauth

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// provisionTokens sets up the signer/verifier from fixed keys, or from keys
// generated once per app_id and kept (and rotated) in the store.
func (h *Handler) provisionTokens(ctx caddy.Context, store session.Store, prefix string) error {
	cfg := token.Config{Audience: h.AppID, TTL: time.Duration(h.TokenTTL)}
	if len(h.SigningKeys) > 0 {
		keys := make([]token.Key, 0, len(h.SigningKeys))
		for i, sk := range h.SigningKeys {
			secret, err := token.ParseSecret(caddy.NewReplacer().ReplaceKnown(sk.Key, ""))
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
		h.tokens, err = token.New(cfg, ring)
		return err
	}

	h.keys = token.NewManager(token.ManagerConfig{
		KV:     store,
		Prefix: prefix + "/keys",
		Alg:    h.SigningAlg,
		Rotate: time.Duration(h.KeyRotation),
		TTL:    time.Duration(h.TokenTTL),
		// Lets the manager tell a missing key from a store failure.
		NotFound: session.ErrNotFound,
	})
	kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ring, err := h.keys.Keyring(kctx, time.Now())
	if err != nil {
		return fmt.Errorf("wxauth: loading the signing key from the store: %w", err)
	}
	if h.tokens, err = token.New(cfg, ring); err != nil {
		return err
	}
	if h.KeyRotation > 0 {
		go h.rotateKeys(ctx)
	}
	return nil
}

// rotateKeys swaps in the current keyring until the config is unloaded.
func (h *Handler) rotateKeys(ctx caddy.Context) {
	every := min(time.Duration(h.KeyRotation)/10, time.Minute)
	t := time.NewTicker(max(every, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			ring, err := h.keys.Keyring(kctx, now)
			cancel()
			if err != nil {
				h.logger.Warn("refreshing signing keys failed; keeping the current ones", zap.Error(err))
				continue
			}
			h.tokens.SetKeyring(ring)
		}
	}
}
