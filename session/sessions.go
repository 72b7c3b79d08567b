package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidID is returned when a session id or openid could not be a key
// (empty, too long, or with '/', '\', "..", or control characters).
var ErrInvalidID = errors.New("session: invalid id")

// maxIDLen bounds ids used in keys; openids are 28 characters, NewID 43.
const maxIDLen = 128

// Session is one login of one user ("third session"); it never holds the session_key.
type Session struct {
	// ID identifies the session; NewID makes it.
	ID string `json:"id"`
	// OpenID is the user's openid in the app AppID names.
	OpenID string `json:"openid"`
	// UnionID is the user's unionid, when the platform returned one.
	UnionID string `json:"unionid,omitempty"`
	// Platform is the platform the user logged in on; empty in sessions
	// stored before platforms existed, which are WeChat's.
	Platform string `json:"platform,omitempty"`
	// AppID is the app the user logged in to; empty means the handler's
	// WeChat mini-program.
	AppID string `json:"app_id,omitempty"`
	// Surface is where the user logged in: "mp", "oa" or "qr"; empty
	// means "mp".
	Surface string `json:"surface,omitempty"`
	// Anonymous marks a device's anonymous openid (a Douyin guest).
	Anonymous bool `json:"anonymous,omitempty"`
	// User is the key of the user's record (claims, ended sessions); empty
	// in sessions stored before it existed, whose user is OpenID.
	User string `json:"user,omitempty"`
	// Created is when the user logged in.
	Created time.Time `json:"created"`
	// Expires is when the session ends unless extended.
	Expires time.Time `json:"expires"`
	// Claims are extra claims from the app's login hook. They round-trip
	// through JSON, so numbers come back as float64.
	Claims map[string]any `json:"claims,omitempty"`
}

// UserKey is the key of s's user record.
func (s *Session) UserKey() string {
	if s.User != "" {
		return s.User
	}
	return s.OpenID
}

// PlatformName is s's platform, "wechat" for sessions stored before
// platforms existed.
func (s *Session) PlatformName() string {
	if s.Platform != "" {
		return s.Platform
	}
	return "wechat"
}

// SurfaceName is where s logged in, "mp" unless a web login.
func (s *Session) SurfaceName() string {
	if s.Surface != "" {
		return s.Surface
	}
	return "mp"
}

// Manager keeps sessions and session_keys of one app in a Store, under
// prefix+"/sessions/<id>" and prefix+"/session_keys/<key>", where key names
// one user of one app (the openid for the WeChat mini-program).
type Manager struct {
	store  Store
	prefix string
	maxAge time.Duration    // 0: sessions may be extended forever
	now    func() time.Time // the clock; time.Now but in tests
}

// NewManager returns a Manager keeping its keys under prefix, such as
// "wxauth/<appid>".
func NewManager(s Store, prefix string) *Manager {
	return &Manager{store: s, prefix: strings.TrimSuffix(prefix, "/"), now: time.Now}
}

// SetMaxAge caps every session at maxAge from its creation (the login):
// Create and Extend never set Expires, or the store's expiry, past
// Created+maxAge, and Get refuses a session that is older. 0 (the default)
// caps nothing. Call it before the Manager is used.
func (m *Manager) SetMaxAge(maxAge time.Duration) { m.maxAge = max(maxAge, 0) }

// until returns when a session created at created and kept for ttl from
// now ends: now+ttl, or its age limit if that is earlier.
func (m *Manager) until(created, now time.Time, ttl time.Duration) time.Time {
	exp := now.Add(ttl)
	if m.maxAge > 0 {
		if limit := created.Add(m.maxAge); limit.Before(exp) {
			return limit
		}
	}
	return exp
}

// Store returns the Store the Manager uses.
func (m *Manager) Store() Store { return m.store }

// Create starts a session for openid that lasts ttl (which must be positive).
func (m *Manager) Create(ctx context.Context, openid, unionid string, claims map[string]any, ttl time.Duration) (*Session, error) {
	now := m.now().UTC()
	s := &Session{ID: NewID(), OpenID: openid, UnionID: unionid, Created: now, Claims: claims}
	if err := m.add(ctx, s, ttl, now); err != nil {
		return nil, err
	}
	return s, nil
}

// Add stores s, made by the caller (ID from NewID, Created when the login
// began), for ttl (which must be positive), within the age limit.
func (m *Manager) Add(ctx context.Context, s *Session, ttl time.Duration) error {
	return m.add(ctx, s, ttl, m.now().UTC())
}

func (m *Manager) add(ctx context.Context, s *Session, ttl time.Duration, now time.Time) error {
	if !validID(s.OpenID) || !validID(s.ID) {
		return ErrInvalidID
	}
	if ttl <= 0 {
		return errors.New("session: session lifetime must be positive")
	}
	s.Expires = m.until(s.Created, now, ttl)
	return m.put(ctx, s, s.Expires.Sub(now))
}

// Get returns the session id, or ErrNotFound when it is absent, expired,
// revoked or id is invalid.
func (m *Manager) Get(ctx context.Context, id string) (*Session, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	b, err := m.store.Get(ctx, m.sessionKey(id))
	if err != nil {
		return nil, err
	}
	var s Session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("session: decoding session: %w", err)
	}
	// The store's expiry may be coarser than Expires; a copied file could
	// carry another id.
	now := m.now()
	if s.ID != id || !now.Before(s.Expires) || (m.maxAge > 0 && !now.Before(s.Created.Add(m.maxAge))) {
		return nil, ErrNotFound
	}
	return &s, nil
}

// Extend makes s last ttl from now (for token refresh), but not past its
// age limit (SetMaxAge), and stores it. It returns ErrNotFound, and stores
// nothing, when s has ended meanwhile: a refresh racing a logout must not
// bring the session back.
func (m *Manager) Extend(ctx context.Context, s *Session, ttl time.Duration) error {
	if !validID(s.ID) {
		return ErrNotFound
	}
	if ttl <= 0 {
		return errors.New("session: session lifetime must be positive")
	}
	unlock, err := m.store.Lock(ctx, m.sessionKey(s.ID))
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := m.Get(ctx, s.ID)
	if err != nil {
		return err
	}
	now := m.now().UTC()
	next := *s
	next.Expires = m.until(cur.Created, now, ttl)
	if !next.Expires.After(now) {
		return ErrNotFound // its age limit is reached
	}
	if err := m.put(ctx, &next, next.Expires.Sub(now)); err != nil {
		return err
	}
	s.Expires = next.Expires
	return nil
}

// Revoke ends session id (logout). Revoking an absent session is not an error.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	if !validID(id) {
		return nil // no such session can exist
	}
	unlock, err := m.store.Lock(ctx, m.sessionKey(id))
	if err != nil {
		return err
	}
	defer unlock()
	return m.store.Delete(ctx, m.sessionKey(id))
}

// SetSessionKey keeps sessionKey as the newest session_key of the user key
// names for ttl (<= 0: no expiry), replacing the previous one as every
// login on the platform does.
func (m *Manager) SetSessionKey(ctx context.Context, key, sessionKey string, ttl time.Duration) error {
	if !validID(key) {
		return ErrInvalidID
	}
	if sessionKey == "" {
		return errors.New("session: empty session_key")
	}
	return m.store.Set(ctx, m.prefix+"/session_keys/"+key, []byte(sessionKey), ttl)
}

// SessionKey returns the newest session_key of the user key names, or
// ErrNotFound.
func (m *Manager) SessionKey(ctx context.Context, key string) (string, error) {
	if !validID(key) {
		return "", ErrNotFound
	}
	b, err := m.store.Get(ctx, m.prefix+"/session_keys/"+key)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (m *Manager) put(ctx context.Context, s *Session, ttl time.Duration) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("session: encoding session: %w", err)
	}
	return m.store.Set(ctx, m.sessionKey(s.ID), b, ttl)
}

func (m *Manager) sessionKey(id string) string {
	return m.prefix + "/sessions/" + id
}

// validID reports whether id can be the last element of a key without
// escaping its folder: file storages use keys as paths.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLen || id == "." || strings.Contains(id, "..") ||
		strings.ContainsAny(id, `/\`) || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// NewID returns a new random session id: 256 bits from crypto/rand,
// base64url without padding.
func NewID() string {
	return base64.RawURLEncoding.EncodeToString(RandomKey())
}

// RandomKey returns 32 bytes from crypto/rand.
func RandomKey() []byte {
	b := make([]byte, 32)
	rand.Read(b) // never fails; it crashes the program instead
	return b
}
