package wxauth

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/wxauth/caddy-wxauth/internal/apierr"

	"github.com/wxauth/caddy-wxauth/internal/keys"
	"github.com/wxauth/caddy-wxauth/token"
)

// errKeysNotLoaded answers while the generated keys could not be loaded.
var errKeysNotLoaded = apierr.New(http.StatusServiceUnavailable, "store_unavailable",
	"the signing keys are not loaded yet: the session store is not reachable; try again shortly").WithHeader("Retry-After", "1")

// provisionTokens sets up the signer/verifier from fixed keys, or from keys
// generated once per app_id and kept (and rotated) in the store. When the
// store cannot be reached, Caddy still starts: logins and token checks
// answer 503 until the keys are loaded. The key source and the app's change
// feed tell each other what they notice: a wiped store (cached tokens are
// confirmed in the store again) and a gap in the feed (the keys are checked).
func (h *Handler) provisionTokens(ctx context.Context) error {
	fixed := make([]keys.FixedKey, len(h.SigningKeys))
	for i, sk := range h.SigningKeys {
		fixed[i] = keys.FixedKey{ID: sk.ID, Key: sk.Key}
	}
	src, err := keys.New(ctx, keys.Config{
		Token:  token.Config{Audience: h.AppID, Apps: h.apps(), TTL: time.Duration(h.TokenTTL)},
		Fixed:  fixed,
		Store:  h.store,
		Prefix: h.prefix + "/keys",
		Alg:    h.SigningAlg,
		Rotate: time.Duration(h.KeyRotation),
		Last:   &h.app.ring,
		Wipes:  h.app.changes,
		Logger: h.logger,
	})
	if err != nil {
		return err
	}
	h.keys = src
	if src.Generated() {
		// A gap in the feed may be a wiped store: the keys are checked,
		// until this handler releases the app.
		unwatch, unshare := h.app.changes.SubscribeGaps(src), h.unshare
		h.unshare = func() {
			unwatch()
			if unshare != nil {
				unshare()
			}
		}
	}
	return nil
}

// verifyToken checks a token with the current keys, reading them from the
// store again when the token names a key this instance does not know.
func (h *Handler) verifyToken(tok string) (*token.Claims, time.Duration, error) {
	c, leeway, err := h.keys.Verify(tok)
	if errors.Is(err, keys.ErrNotLoaded) {
		return nil, 0, errKeysNotLoaded
	}
	return c, leeway, err
}

// signer returns the token signer/verifier, making or loading the keys
// first when there are none yet; errKeysNotLoaded when the store fails.
func (h *Handler) signer() (*token.Tokens, error) {
	t, err := h.keys.Signer()
	if err != nil {
		return nil, errKeysNotLoaded
	}
	return t, nil
}
