// Package users keeps what wxauth knows of each user (see KeyRule) across its
// sessions: the claims the app set, when the app ended every session, and
// whether the user has logged in before. Records change under the store's
// lock, so concurrent changes from any instance lose nothing.
package users

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/wxauth/caddy-wxauth/session"
)

// Record is what wxauth keeps per user (KeyRule names them), across its
// sessions: the claims the app set, and when the app last ended all its
// sessions.
type Record struct {
	// Claims are the app's claims on the user (uid, roles, ...): every
	// session of the user hands them upstream.
	Claims map[string]any `json:"claims,omitempty"`
	// EndedAt (unix nanos) ends every session begun before it.
	EndedAt int64 `json:"ended_at,omitempty"`
	// Seen is set once the user has logged in, for first_login.
	Seen bool `json:"seen,omitempty"`
	// FirstBy is the session id of a first login whose claim is pending:
	// its app hook has not answered yet.
	FirstBy string `json:"first_by,omitempty"`
}

// Ended reports whether the app ended s with every session of its user.
func (u *Record) Ended(s *session.Session) bool {
	return s.Created.UnixNano() < u.EndedAt
}

// Announcer tells every instance that a user's claims changed.
type Announcer interface {
	ClaimsChanged(ctx context.Context, user string, claims map[string]any) error
}

// Config configures a Store.
type Config struct {
	// Store keeps the records; shared by every instance.
	Store session.Store
	// Prefix of the app's store keys, e.g. "wxauth/<appid>".
	Prefix string
	// TTL bounds how long a record outlives its last change: an ended_at
	// must outlive every session it ends, and claims a user's tokens.
	TTL time.Duration
	// Sessions are the app's sessions, read by Live.
	Sessions *session.Manager
	// Announce tells every instance of a claims change; nil tells no one.
	Announce Announcer
}

// Store reads and changes user records.
type Store struct {
	cfg Config
}

// New returns the user records of cfg.
func New(cfg Config) *Store { return &Store{cfg: cfg} }

// Link records that the user local (KeyRule.Local) is now known by key,
// a person joined by unionid, so a call naming the openid reaches them.
// It is kept as long as a record.
func (st *Store) Link(ctx context.Context, local, key string) error {
	if local == key {
		return nil
	}
	return st.cfg.Store.Set(ctx, st.cfg.Prefix+"/user_links/"+local, []byte(key), st.cfg.TTL)
}

// Resolve returns the key of the user local logged in as: the person it
// was linked to, or local itself.
func (st *Store) Resolve(ctx context.Context, local string) (string, error) {
	b, err := st.cfg.Store.Get(ctx, st.cfg.Prefix+"/user_links/"+local)
	switch {
	case errors.Is(err, session.ErrNotFound):
		return local, nil
	case err != nil:
		return "", err
	}
	return string(b), nil
}

// key names the user's record.
func (st *Store) key(user string) string {
	return st.cfg.Prefix + "/users/" + user
}

// Get reads the user's record; an absent one reads as empty.
func (st *Store) Get(ctx context.Context, user string) (*Record, error) {
	b, err := st.cfg.Store.Get(ctx, st.key(user))
	if errors.Is(err, session.ErrNotFound) {
		return &Record{}, nil
	}
	if err != nil {
		return nil, err
	}
	var u Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // large integer ids keep their precision
	if err := dec.Decode(&u); err != nil {
		return nil, fmt.Errorf("wxauth: decoding a user record: %w", err)
	}
	return &u, nil
}

// Update changes the user's record under the store's lock, so a refresh, a
// hook answer and an app call racing each other lose no change.
func (st *Store) Update(ctx context.Context, user string, change func(u *Record)) (*Record, error) {
	return st.change(ctx, user, func(u *Record) bool { change(u); return true })
}

// change is Update for a change that may find nothing to do: the record is
// stored only when change reports that it changed it.
func (st *Store) change(ctx context.Context, user string, change func(u *Record) bool) (*Record, error) {
	unlock, err := st.cfg.Store.Lock(ctx, st.key(user))
	if err != nil {
		return nil, err
	}
	defer unlock()
	u, err := st.Get(ctx, user)
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
	if err := st.cfg.Store.Set(ctx, st.key(user), b, st.cfg.TTL); err != nil {
		return nil, err
	}
	return u, nil
}

// ApplyClaims records the app's claims change on the user, with any other
// change to the record in the same write, and tells every instance when
// the claims changed. It returns the user's record after the change.
func (st *Store) ApplyClaims(ctx context.Context, user string, change map[string]any, also ...func(*Record)) (*Record, error) {
	var before map[string]any
	u, err := st.Update(ctx, user, func(u *Record) {
		before = u.Claims
		u.Claims = MergeClaims(u.Claims, change)
		for _, f := range also {
			f(u)
		}
	})
	if err != nil {
		return nil, err
	}
	if st.cfg.Announce != nil && !reflect.DeepEqual(before, u.Claims) {
		if err := st.cfg.Announce.ClaimsChanged(ctx, user, u.Claims); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// Live reads session sid and its user's record; a session that the app
// ended (end_sessions) reads as ended (session.ErrNotFound). The returned
// session carries the user's current claims.
func (st *Store) Live(ctx context.Context, sid string) (*session.Session, error) {
	s, err := st.cfg.Sessions.Get(ctx, sid)
	if err != nil {
		return nil, err
	}
	u, err := st.Get(ctx, s.UserKey())
	if err != nil {
		return nil, err
	}
	if u.Ended(s) {
		return nil, session.ErrNotFound
	}
	s.Claims = u.Claims
	return s, nil
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

// ClaimFirst reads the user's record for the login of session sid and claims
// the user's first login for it when no login has been seen. The record
// returned is the one after the claim.
func (st *Store) ClaimFirst(ctx context.Context, user, sid string) (u *Record, first bool, err error) {
	u, err = st.change(ctx, user, func(u *Record) bool {
		if u.Seen {
			return false
		}
		u.Seen, u.FirstBy, first = true, sid, true
		return true
	})
	return u, first, err
}

// GiveBackFirst undoes ClaimFirst for the failed login of session sid.
func (st *Store) GiveBackFirst(ctx context.Context, user, sid string) error {
	_, err := st.change(ctx, user, func(u *Record) bool {
		if u.FirstBy != sid {
			return false // the claim is no longer ours
		}
		u.Seen, u.FirstBy = false, ""
		return true
	})
	return err
}

// SeenBy marks the user seen once the login of session sid has succeeded,
// ending its pending claim of the first login if it had one.
func SeenBy(sid string) func(u *Record) {
	return func(u *Record) {
		u.Seen = true
		if u.FirstBy == sid {
			u.FirstBy = ""
		}
	}
}

// MergeClaims applies a change of claims: a null value removes the claim.
func MergeClaims(cur, change map[string]any) map[string]any {
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
