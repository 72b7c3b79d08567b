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
	// FirstBy is the session id of a first login whose claim is pending:
	// its app hook has not answered yet.
	FirstBy string `json:"first_by,omitempty"`
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
	return h.changeUser(ctx, openid, func(u *userRecord) bool { change(u); return true })
}

// changeUser is updateUser for a change that may find nothing to do: the
// record is stored only when change reports that it changed it.
func (h *Handler) changeUser(ctx context.Context, openid string, change func(u *userRecord) bool) (*userRecord, error) {
	unlock, err := h.store.Lock(ctx, h.userKey(openid))
	if err != nil {
		return nil, err
	}
	defer unlock()
	u, err := h.user(ctx, openid)
	if err != nil {
		return nil, err
	}
	if !change(u) {
		return u, nil
	}
	b, err := json.Marshal(u)
	if err != nil {
		return nil, err
	}
	if err := h.store.Set(ctx, h.userKey(openid), b, h.userTTL()); err != nil {
		return nil, err
	}
	return u, nil
}

// First logins. The app's login event says first_login: true for one login
// of each user, whatever the concurrency and however many instances share
// the store, because the first login is claimed under the user's lock
// before the app is asked: a login that finds the user unseen marks it seen
// and names itself in FirstBy. Logins that run while that first login is
// pending find the user seen and say false. A first login that fails after
// its claim (the hook fails, or the store does) gives the claim back, if it
// is still its own, so that the next login is the first again: the app may
// thus see first_login: true again after a login it was told about failed.
// A claim the store fails to give back is kept, and then no login says true.

// claimFirst reads openid's record for the login of session sid and claims
// the user's first login for it when no login has been seen. The record
// returned is the one after the claim.
func (h *Handler) claimFirst(ctx context.Context, openid, sid string) (u *userRecord, first bool, err error) {
	u, err = h.changeUser(ctx, openid, func(u *userRecord) bool {
		if u.Seen {
			return false
		}
		u.Seen, u.FirstBy, first = true, sid, true
		return true
	})
	return u, first, err
}

// giveBackFirst undoes claimFirst for the failed login of session sid.
func (h *Handler) giveBackFirst(ctx context.Context, openid, sid string) error {
	_, err := h.changeUser(ctx, openid, func(u *userRecord) bool {
		if u.FirstBy != sid {
			return false // the claim is no longer ours
		}
		u.Seen, u.FirstBy = false, ""
		return true
	})
	return err
}

// seenBy marks the user seen once the login of session sid has succeeded,
// ending its pending claim of the first login if it had one.
func seenBy(sid string) func(u *userRecord) {
	return func(u *userRecord) {
		u.Seen = true
		if u.FirstBy == sid {
			u.FirstBy = ""
		}
	}
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
