package token

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"
)

// KV is what key management needs from the shared store; session.Store
// satisfies it.
type KV interface {
	// Get returns the value of key. An absent key is reported with an error
	// that matches fs.ErrNotExist (errors.Is), as session.ErrNotFound does;
	// any other error is a store failure, which the Manager returns rather
	// than take the key for absent and create another over it.
	Get(ctx context.Context, key string) ([]byte, error)
	// SetNX stores value only when key is absent; ttl <= 0 never expires.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
}

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// KV is the store shared by every instance; required.
	KV KV
	// Prefix of the storage keys, e.g. "wxauth/<appid>/keys"; required.
	Prefix string
	// Alg of generated keys: HS256 (default) or EdDSA.
	Alg string
	// Rotate is the rotation period; 0 keeps one key forever.
	Rotate time.Duration
	// TTL is the token lifetime: a rotated-out key is kept for
	// verification until the tokens it signed have expired.
	TTL time.Duration
}

// keyMargin extends how long rotated-out keys are kept, beyond the token
// TTL: it covers verification leeway and clock skew between instances.
const keyMargin = 5 * time.Minute

// maxRingKeys bounds the keys a rotating ring holds (and the reads made
// once per period): Rotate must not be tiny next to TTL.
const maxRingKeys = 32

// MinRotation returns the shortest rotation period a Manager accepts for
// tokens that live ttl: every key is kept until the tokens it signed have
// expired (ttl and a margin after its period), and a ring holds at most
// 32 keys, counting the current and the next one.
func MinRotation(ttl time.Duration) time.Duration {
	span := int64((ttl + keyMargin + time.Second - 1) / time.Second)
	earlier := int64(maxRingKeys - 2)
	return time.Duration(max((span+earlier-1)/earlier, 1)) * time.Second
}

// Manager provides the keyring of an app from the shared store, so that
// every instance signs and verifies with the same keys and a restart
// keeps them. It is safe for concurrent use.
//
// Without rotation there is one key, stored under Prefix+"/"+alg
// (lower-case), whose kid is the lower-case alg. With rotation, time is
// cut into periods i = unix(now) / Rotate; the key of period i is stored
// under Prefix+"/"+kid with kid = alg+"-"+i (e.g. "hs256-19876"). The ring
// of period i is: key i (signs), key i+1 (created ahead, verifies, so an
// instance whose clock or cached ring lags still accepts tokens of the next
// period), and the keys of earlier periods that ended less than
// TTL + 5 minutes before period i began. Storage ttl of a period key is
// 2*Rotate + TTL + 5 minutes.
type Manager struct {
	cfg ManagerConfig

	mu         sync.Mutex
	ring       *Keyring
	ringPeriod int64             // period of ring, when rotating
	keys       map[int64]Key     // keys known by period, reused across periods
	retired    map[string]retire // keys a reload found replaced, by kid
}

// retire is a key that is no longer in the store but may still verify
// tokens it signed, until their last expiry.
type retire struct {
	key   Key
	until time.Time
}

// ErrNoKeys is returned by Load when the store holds no signing key yet.
var ErrNoKeys = fmt.Errorf("token: no signing key in the store yet: %w", fs.ErrNotExist)

// NewManager returns a Manager for cfg. Configuration errors are reported
// by Keyring.
func NewManager(cfg ManagerConfig) *Manager {
	if cfg.Alg == "" {
		cfg.Alg = HS256
	}
	return &Manager{cfg: cfg, keys: make(map[int64]Key), retired: make(map[string]retire)}
}

func (m *Manager) check() error {
	c := m.cfg
	switch {
	case c.KV == nil:
		return errors.New("token: key manager needs a store")
	case c.Prefix == "":
		return errors.New("token: key manager needs a storage prefix")
	case c.Alg != HS256 && c.Alg != EdDSA:
		return fmt.Errorf("token: unsupported algorithm %q (want %s or %s)", c.Alg, HS256, EdDSA)
	case c.Rotate < 0 || c.TTL < 0:
		return errors.New("token: negative key rotation period or ttl")
	case c.Rotate > 0 && c.Rotate < time.Second:
		return fmt.Errorf("token: key rotation period %s is under a second", c.Rotate)
	case c.Rotate > 0 && m.keep()+2 > maxRingKeys:
		return fmt.Errorf("token: key rotation period %s is too short for token ttl %s (would keep over %d keys)", c.Rotate, c.TTL, maxRingKeys)
	}
	return nil
}

// rotateSec is the rotation period in whole seconds.
func (m *Manager) rotateSec() int64 { return int64(m.cfg.Rotate / time.Second) }

// keep is how many earlier periods' keys a ring holds: key i-n is needed
// while (i-n+1)*R + TTL + margin > i*R, i.e. n < 1 + (TTL+margin)/R.
func (m *Manager) keep() int64 {
	r := m.rotateSec()
	span := int64((m.cfg.TTL + keyMargin + time.Second - 1) / time.Second)
	return (span + r - 1) / r // ceil(span / r)
}

// period returns the index of the period holding now.
func (m *Manager) period(now time.Time) int64 {
	u, r := now.Unix(), m.rotateSec()
	p := u / r
	if u%r < 0 {
		p-- // floor for times before 1970
	}
	return p
}

// NextRotation returns when the signing key changes after now: the time
// to call Keyring again. It is the zero time without rotation.
func (m *Manager) NextRotation(now time.Time) time.Time {
	if m.cfg.Rotate <= 0 || m.rotateSec() <= 0 {
		return time.Time{}
	}
	return time.Unix((m.period(now)+1)*m.rotateSec(), 0)
}

// Keyring returns the keyring for now, creating keys in the store as
// needed. Repeated calls in the same period return the same *Keyring
// without I/O. Store errors are returned and nothing is cached.
func (m *Manager) Keyring(ctx context.Context, now time.Time) (*Keyring, error) {
	return m.keyring(ctx, now, true, false)
}

// Load is Keyring without creating keys: it only reads the store, and
// returns ErrNoKeys when the signing key is not there yet.
func (m *Manager) Load(ctx context.Context, now time.Time) (*Keyring, error) {
	return m.keyring(ctx, now, false, false)
}

// Reload reads the keys from the store again, read only, for a token signed
// by a key this instance has not seen (made elsewhere, e.g. after the store
// was wiped). Keys of the previous ring that the store no longer holds keep
// verifying until the tokens they signed have expired.
func (m *Manager) Reload(ctx context.Context, now time.Time) (*Keyring, error) {
	return m.keyring(ctx, now, false, true)
}

// Renew is Reload that makes the keys again when the store lost them (a
// wipe): every instance that renews agrees on the new keys through the
// store, and keeps the old ones verifying.
func (m *Manager) Renew(ctx context.Context, now time.Time) (*Keyring, error) {
	return m.keyring(ctx, now, true, true)
}

func (m *Manager) keyring(ctx context.Context, now time.Time, create, reload bool) (*Keyring, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.ring
	if reload {
		m.ring, m.keys = nil, make(map[int64]Key)
	}
	ring, err := m.build(ctx, now, create)
	if err != nil {
		if reload {
			m.ring = prev
		}
		return nil, err
	}
	if reload && prev != nil && prev != ring || len(m.retired) > 0 {
		if reload && prev != nil {
			m.retireMissing(ring, prev, now)
		}
		ring, err = m.withRetired(ring, now)
		if err != nil {
			return nil, err
		}
		m.ring = ring
	}
	return ring, nil
}

// retireMissing keeps the keys of prev that a reload did not find, for
// the tokens they signed.
func (m *Manager) retireMissing(ring, prev *Keyring, now time.Time) {
	have := map[string]bool{}
	for _, id := range ring.IDs() {
		have[id] = true
	}
	for _, k := range prev.keys {
		if _, ok := m.retired[k.ID]; !ok && !have[k.ID] {
			m.retired[k.ID] = retire{key: k, until: now.Add(m.cfg.TTL + keyMargin)}
		}
	}
}

// withRetired adds the retired keys still in use to ring.
func (m *Manager) withRetired(ring *Keyring, now time.Time) (*Keyring, error) {
	have := map[string]bool{}
	for _, id := range ring.IDs() {
		have[id] = true
	}
	keys := append([]Key(nil), ring.keys...)
	for id, r := range m.retired {
		switch {
		case !now.Before(r.until):
			delete(m.retired, id)
		case !have[id] && len(keys) < maxRingKeys:
			keys = append(keys, r.key)
		}
	}
	if len(keys) == len(ring.keys) {
		return ring, nil
	}
	return NewKeyring(keys...)
}

// build returns the ring of now, reading (and with create, making) keys.
func (m *Manager) build(ctx context.Context, now time.Time, create bool) (*Keyring, error) {
	if m.cfg.Rotate == 0 {
		if m.ring != nil {
			return m.ring, nil
		}
		kid := strings.ToLower(m.cfg.Alg)
		k, err := m.ensure(ctx, kid, 0, create)
		if err != nil {
			return nil, err
		}
		r, err := NewKeyring(k)
		if err != nil {
			return nil, err
		}
		m.ring = r
		return r, nil
	}

	p := m.period(now)
	if m.ring != nil && m.ringPeriod == p {
		return m.ring, nil
	}
	ttl := 2*m.cfg.Rotate + m.cfg.TTL + keyMargin
	ring := make([]Key, 0, m.keep()+2)
	found := make(map[int64]Key, m.keep()+2)
	for _, i := range []int64{p, p + 1} {
		k, ok := m.keys[i]
		if !ok {
			var err error
			if k, err = m.ensure(ctx, m.kid(i), ttl, create); err != nil {
				if i > p && errors.Is(err, ErrNoKeys) {
					continue
				}
				return nil, err
			}
		}
		ring, found[i] = append(ring, k), k
	}
	for i := p - 1; i >= p-m.keep(); i-- {
		k, ok := m.keys[i]
		if !ok {
			var err error
			if k, ok, err = m.load(ctx, m.kid(i)); err != nil {
				return nil, err
			}
		}
		if ok {
			ring, found[i] = append(ring, k), k
		}
	}
	r, err := NewKeyring(ring...)
	if err != nil {
		return nil, err
	}
	m.ring, m.ringPeriod, m.keys = r, p, found
	return r, nil
}

// Lost reports whether a reload found key id gone from the store, though
// this Manager had it: the store was wiped, or the key made again elsewhere.
func (m *Manager) Lost(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.retired[id]
	return ok
}

// StoredSigningID returns the id of the signing key that the store holds
// for now ("" when it holds none, e.g. after a wipe), with one read: an
// instance compares it with its own to learn that the store was wiped and
// its keys made again elsewhere.
func (m *Manager) StoredSigningID(ctx context.Context, now time.Time) (string, error) {
	if err := m.check(); err != nil {
		return "", err
	}
	name := strings.ToLower(m.cfg.Alg)
	if m.cfg.Rotate > 0 {
		name = m.kid(m.period(now))
	}
	k, ok, err := m.load(ctx, name)
	if err != nil || !ok {
		return "", err
	}
	return k.ID, nil
}

func (m *Manager) kid(i int64) string {
	return strings.ToLower(m.cfg.Alg) + "-" + strconv.FormatInt(i, 10)
}

// ensure returns the key stored under name, creating it first when absent
// (with create; else ErrNoKeys). Racing instances agree through SetNX and
// read back the winner. A created key's id is name plus a random suffix, so
// a key made again after the store was wiped never shares an id with the
// old one, which other instances may still hold.
func (m *Manager) ensure(ctx context.Context, name string, ttl time.Duration, create bool) (Key, error) {
	if k, ok, err := m.load(ctx, name); err != nil || ok {
		return k, err
	}
	if !create {
		return Key{}, ErrNoKeys
	}
	kid := name
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return Key{}, err
	}
	kid = name + "-" + hex.EncodeToString(suffix[:])
	cand, err := GenerateKey(m.cfg.Alg, kid)
	if err != nil {
		return Key{}, err
	}
	b, err := cand.Marshal()
	if err != nil {
		return Key{}, err
	}
	if _, err := m.cfg.KV.SetNX(ctx, m.cfg.Prefix+"/"+name, b, ttl); err != nil {
		return Key{}, fmt.Errorf("token: storing key %q: %w", name, err)
	}
	k, ok, err := m.load(ctx, name)
	switch {
	case err != nil:
		return Key{}, err
	case !ok:
		return Key{}, fmt.Errorf("token: key %q missing from the store right after it was stored", name)
	}
	return k, nil
}

// load reads key kid; ok == false with a nil error means it is absent
// (see KV.Get).
func (m *Manager) load(ctx context.Context, kid string) (Key, bool, error) {
	b, err := m.cfg.KV.Get(ctx, m.cfg.Prefix+"/"+kid)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Key{}, false, nil
	case err != nil:
		return Key{}, false, fmt.Errorf("token: reading key %q: %w", kid, err)
	}
	k, err := UnmarshalKey(b)
	if err != nil {
		return Key{}, false, err
	}
	if (k.ID != kid && !strings.HasPrefix(k.ID, kid+"-")) || k.Alg != m.cfg.Alg {
		return Key{}, false, fmt.Errorf("token: stored key %q holds kid %q alg %q", kid, k.ID, k.Alg)
	}
	return k, true, nil
}
