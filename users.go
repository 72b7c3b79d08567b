package wxauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wxauth/caddy-wxauth/session"
)

// userRecord is what wxauth keeps per openid, across its sessions: the
// claims the app set, and when the app last ended all its sessions.
type userRecord struct {
	// Claims are the app's claims on the user (uid, roles, ...): every
	// session of the openid hands them upstream.
	Claims map[string]any `json:"claims,omitempty"`
	// EndedAt (unix nanos) ends every session begun before it.
	EndedAt int64 `json:"ended_at,omitempty"`
	// Seen is set once the user has logged in, for first_login.
	Seen bool `json:"seen,omitempty"`
}

// userTTL bounds how long a user record outlives its last change: an
// ended_at must outlive every session it ends, and claims a user's tokens.
func (h *Handler) userTTL() time.Duration {
	return time.Duration(h.SessionMaxAge) + time.Duration(h.TokenTTL)
}

// userKey names openid's record.
func (h *Handler) userKey(openid string) string {
	return h.prefix + "/users/" + openid
}

// user reads openid's record; an absent one reads as empty.
func (h *Handler) user(ctx context.Context, openid string) (*userRecord, error) {
	b, err := h.store.Get(ctx, h.userKey(openid))
	if errors.Is(err, session.ErrNotFound) {
		return &userRecord{}, nil
	}
	if err != nil {
		return nil, err
	}
	var u userRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // large integer ids keep their precision
	if err := dec.Decode(&u); err != nil {
		return nil, fmt.Errorf("wxauth: decoding a user record: %w", err)
	}
	return &u, nil
}

// updateUser changes openid's record under the store's lock, so a refresh,
// a hook answer and an app call racing each other lose no change.
func (h *Handler) updateUser(ctx context.Context, openid string, change func(u *userRecord)) (*userRecord, error) {
	unlock, err := h.store.Lock(ctx, h.userKey(openid))
	if err != nil {
		return nil, err
	}
	defer unlock()
	u, err := h.user(ctx, openid)
	if err != nil {
		return nil, err
	}
	change(u)
	b, err := json.Marshal(u)
	if err != nil {
		return nil, err
	}
	if err := h.store.Set(ctx, h.userKey(openid), b, h.userTTL()); err != nil {
		return nil, err
	}
	return u, nil
}

// mergeClaims applies a change of claims: a null value removes the claim.
func mergeClaims(cur, change map[string]any) map[string]any {
	out := make(map[string]any, len(cur)+len(change))
	for k, v := range cur {
		out[k] = v
	}
	for k, v := range change {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// checkClaims refuses claims the app may not set: reserved names (in any
// case, since headers are case-insensitive), names that are not plain, and
// values that could not travel as a header (see claimText).
func checkClaims(claims map[string]any) error {
	// In name order, so the message names the same claim every time.
	for _, k := range slices.Sorted(maps.Keys(claims)) {
		v := claims[k]
		if reservedClaims[strings.ToLower(k)] || !isPlainName(k) {
			return fmt.Errorf("claim %s is reserved or not a valid name", quoteName(k))
		}
		if err := checkClaimValue(k, v); err != nil {
			return err
		}
	}
	return nil
}

// reservedClaims cannot be set by the app: they carry wxauth's own identity.
var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"sid": true, "openid": true, "unionid": true, "id": true, "ext": true,
}

// liveSession reads session sid and its user's record; a session that the
// app ended (end_sessions) reads as ended (session.ErrNotFound). The
// returned session carries the user's current claims.
func (h *Handler) liveSession(ctx context.Context, sid string) (*session.Session, error) {
	s, err := h.sessions.Get(ctx, sid)
	if err != nil {
		return nil, err
	}
	u, err := h.user(ctx, s.OpenID)
	if err != nil {
		return nil, err
	}
	if u.ended(s) {
		return nil, session.ErrNotFound
	}
	s.Claims = u.Claims
	return s, nil
}

// ended reports whether the app ended s with every session of its user.
func (u *userRecord) ended(s *session.Session) bool {
	return s.Created.UnixNano() < u.EndedAt
}
