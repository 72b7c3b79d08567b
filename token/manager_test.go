package token

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeKV is an in-memory KV that records calls. Expiry is not simulated;
// the ttl of each write is kept for inspection.
type fakeKV struct {
	mu      sync.Mutex
	data    map[string][]byte
	ttl     map[string]time.Duration
	gets    int
	setnxs  int
	failGet error // returned by Get for every key when set
	missErr error // returned by Get for absent keys; default fs.ErrNotExist wrapped
	nilMiss bool  // absent keys give (nil, nil), breaking KV's rule
}

func newFakeKV() *fakeKV {
	return &fakeKV{data: map[string][]byte{}, ttl: map[string]time.Duration{}}
}

func (f *fakeKV) Get(_ context.Context, key string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.failGet != nil {
		return nil, f.failGet
	}
	v, ok := f.data[key]
	if !ok {
		if f.nilMiss {
			return nil, nil
		}
		if f.missErr != nil {
			return nil, f.missErr
		}
		return nil, fmt.Errorf("get %s: %w", key, fs.ErrNotExist)
	}
	return bytes.Clone(v), nil
}

func (f *fakeKV) SetNX(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setnxs++
	if _, ok := f.data[key]; ok {
		return false, nil
	}
	f.data[key], f.ttl[key] = bytes.Clone(value), ttl
	return true, nil
}

func (f *fakeKV) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets + f.setnxs
}

func sameKey(a, b Key) bool {
	return a.ID == b.ID && a.Alg == b.Alg && bytes.Equal(a.Secret, b.Secret) && bytes.Equal(a.Private, b.Private)
}

func mustManagerRing(t *testing.T, m *Manager, at time.Time) *Keyring {
	t.Helper()
	r, err := m.Keyring(context.Background(), at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestManagerFixedKey(t *testing.T) {
	for _, alg := range []string{HS256, EdDSA} {
		t.Run(alg, func(t *testing.T) {
			kv := newFakeKV()
			cfg := ManagerConfig{KV: kv, Prefix: "wxauth/wxapp/keys", Alg: alg, TTL: 2 * time.Hour}
			at := time.Unix(1_700_000_000, 0)

			m1, m2 := NewManager(cfg), NewManager(cfg)
			r1 := mustManagerRing(t, m1, at)
			r2 := mustManagerRing(t, m2, at)
			if !sameKey(r1.Signing(), r2.Signing()) {
				t.Fatal("two managers over one store disagree on the key")
			}
			kid := strings.ToLower(alg)
			if base(r1.Signing().ID) != kid || len(r1.IDs()) != 1 {
				t.Fatalf("ring %v", r1.IDs())
			}
			if _, ok := kv.data["wxauth/wxapp/keys/"+kid]; !ok || kv.ttl["wxauth/wxapp/keys/"+kid] != 0 {
				t.Fatalf("key not stored forever under the prefix: %v", kv.ttl)
			}

			// Cached: no I/O, same ring, whatever the time.
			n := kv.calls()
			if r := mustManagerRing(t, m1, at.Add(1000*time.Hour)); r != r1 || kv.calls() != n {
				t.Fatal("second call not served from memory")
			}

			// Restart.
			r3 := mustManagerRing(t, NewManager(cfg), at.Add(time.Hour))
			if !sameKey(r1.Signing(), r3.Signing()) {
				t.Fatal("restart changed the key")
			}

			// Tokens of one instance verify on the other.
			tok := mustIssue(t, mustTokens(t, Config{}, r1), time.Now())
			if _, err := mustTokens(t, Config{}, r2).Verify(tok); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestManagerConcurrentStart(t *testing.T) {
	kv := newFakeKV()
	cfg := ManagerConfig{KV: kv, Prefix: "p"}
	rings := make([]*Keyring, 8)
	var wg sync.WaitGroup
	for i := range rings {
		wg.Go(func() {
			r, err := NewManager(cfg).Keyring(context.Background(), time.Now())
			if err != nil {
				t.Error(err)
				return
			}
			rings[i] = r
		})
	}
	wg.Wait()
	for _, r := range rings[1:] {
		if r == nil || !sameKey(r.Signing(), rings[0].Signing()) {
			t.Fatal("instances starting together disagree on the key")
		}
	}
}

func TestManagerRotation(t *testing.T) {
	for _, alg := range []string{HS256, EdDSA} {
		t.Run(alg, func(t *testing.T) {
			const R, TTL = time.Hour, 2 * time.Hour
			kv := newFakeKV()
			cfg := ManagerConfig{KV: kv, Prefix: "wxauth/wxapp/keys", Alg: alg, Rotate: R, TTL: TTL}
			m := NewManager(cfg)
			p := int64(500_000)
			start := time.Unix(p*3600, 0) // start of period p
			kid := func(i int64) string { return fmt.Sprintf("%s-%d", strings.ToLower(alg), i) }

			r0 := mustManagerRing(t, m, start.Add(10*time.Minute))
			if got := base(r0.Signing().ID); got != kid(p) {
				t.Fatalf("signing kid %q, want %q", got, kid(p))
			}
			// The next period's key exists already (verify only).
			if ids := r0.IDs(); len(ids) != 2 || base(ids[1]) != kid(p+1) {
				t.Fatalf("first ring %v", ids)
			}
			for _, i := range []int64{p, p + 1} {
				if got, want := kv.ttl["wxauth/wxapp/keys/"+kid(i)], 2*R+TTL+keyMargin; got != want {
					t.Fatalf("stored ttl %s, want %s", got, want)
				}
			}
			if got := m.NextRotation(start.Add(10 * time.Minute)); !got.Equal(start.Add(R)) {
				t.Fatalf("NextRotation %v", got)
			}

			// Same period: no I/O, same ring.
			n := kv.calls()
			if r := mustManagerRing(t, m, start.Add(R-time.Second)); r != r0 || kv.calls() != n {
				t.Fatal("same period not served from memory")
			}

			// Another instance agrees.
			other := mustManagerRing(t, NewManager(cfg), start.Add(30*time.Minute))
			if !sameKey(other.Signing(), r0.Signing()) {
				t.Fatal("two managers disagree on the period key")
			}

			tok0 := mustIssue(t, mustTokens(t, Config{TTL: TTL}, r0), time.Now())

			// Next period: new signing key, the previous one still verifies.
			r1 := mustManagerRing(t, m, start.Add(R))
			if base(r1.Signing().ID) != kid(p+1) || sameKey(r1.Signing(), r0.Signing()) {
				t.Fatalf("period p+1 signs with %q", r1.Signing().ID)
			}
			tk := mustTokens(t, Config{TTL: TTL}, r1)
			if _, err := tk.Verify(tok0); err != nil {
				t.Fatalf("previous key refused right after rotation: %v", err)
			}
			// An instance still on period p accepts tokens of period p+1.
			tok1 := mustIssue(t, tk, time.Now())
			if _, err := mustTokens(t, Config{TTL: TTL}, other).Verify(tok1); err != nil {
				t.Fatalf("lagging instance refuses the next period's token: %v", err)
			}

			// Key p is kept while its tokens may live: it ended at start+R,
			// tokens last TTL (+ margin), so periods p+2 and p+3 still hold it.
			for _, i := range []int64{2, 3} {
				r := mustManagerRing(t, m, start.Add(time.Duration(i)*R+time.Minute))
				tk.SetKeyring(r)
				if _, err := tk.Verify(tok0); err != nil {
					t.Fatalf("period p+%d refuses key p: %v (ring %v)", i, err, r.IDs())
				}
			}
			// Period p+4 starts 3h after key p's period ended: dropped.
			r4 := mustManagerRing(t, m, start.Add(4*R))
			tk.SetKeyring(r4)
			if _, err := tk.Verify(tok0); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "unknown key id") {
				t.Fatalf("period p+4 still accepts key p: %v (ring %v)", err, r4.IDs())
			}
			if _, err := tk.Verify(tok1); err != nil {
				t.Fatalf("period p+4 refuses key p+1: %v", err)
			}

			// Restart at p+4: same keys.
			restarted := mustManagerRing(t, NewManager(cfg), start.Add(4*R+time.Minute))
			if fmt.Sprint(restarted.IDs()) != fmt.Sprint(r4.IDs()) || !sameKey(restarted.Signing(), r4.Signing()) {
				t.Fatalf("restart gives %v, want %v", restarted.IDs(), r4.IDs())
			}
			// Same key material for every kid.
			for i, id := range r4.IDs() {
				if !sameKey(restarted.keys[i], r4.keys[i]) {
					t.Fatalf("restart changed key %s", id)
				}
			}
		})
	}
}

func TestManagerRotationFirstBoot(t *testing.T) {
	// Previous periods' keys never existed: they are skipped.
	kv := newFakeKV()
	cfg := ManagerConfig{KV: kv, Prefix: "p", Rotate: time.Hour, TTL: 2 * time.Hour}
	r := mustManagerRing(t, NewManager(cfg), time.Unix(3600*1000+5, 0))
	if ids := r.IDs(); len(ids) != 2 || base(ids[0]) != "hs256-1000" || base(ids[1]) != "hs256-1001" {
		t.Fatalf("ring %v", ids)
	}
}

// notFoundErr is a store's own "not found" error that matches
// fs.ErrNotExist, as session.ErrNotFound does.
type notFoundErr struct{}

func (notFoundErr) Error() string        { return "fake: not found" }
func (notFoundErr) Is(target error) bool { return target == fs.ErrNotExist }

// TestManagerNotFoundRule: only an error matching fs.ErrNotExist means a
// key is absent (and gets created); any other failure is returned, and no
// key is written over one the store may still hold.
func TestManagerNotFoundRule(t *testing.T) {
	boom := errors.New("store down")
	tests := []struct {
		name    string
		get     func(kv *fakeKV) // how Get answers for the absent keys
		absent  bool
		wantErr error
	}{
		{"absent, wrapped fs.ErrNotExist", func(*fakeKV) {}, true, nil},
		{"absent, the store's own error", func(kv *fakeKV) { kv.missErr = fmt.Errorf("get: %w", notFoundErr{}) }, true, nil},
		{"store failure", func(kv *fakeKV) { kv.failGet = boom }, false, boom},
		{"store timeout", func(kv *fakeKV) { kv.failGet = context.DeadlineExceeded }, false, context.DeadlineExceeded},
		{"nil value without error", func(kv *fakeKV) { kv.nilMiss = true }, false, nil},
	}
	for _, tt := range tests {
		for _, rotate := range []time.Duration{0, time.Hour} {
			t.Run(fmt.Sprintf("%s/rotate=%s", tt.name, rotate), func(t *testing.T) {
				kv := newFakeKV()
				tt.get(kv)
				m := NewManager(ManagerConfig{KV: kv, Prefix: "p", Rotate: rotate, TTL: time.Hour})
				_, err := m.Keyring(context.Background(), time.Unix(3600*1000+5, 0))
				switch {
				case tt.absent && err != nil:
					t.Fatalf("absent key: %v", err)
				case tt.absent && kv.setnxs == 0:
					t.Fatal("absent key was not created")
				case !tt.absent && err == nil:
					t.Fatal("store failure not reported")
				case !tt.absent && kv.setnxs != 0:
					t.Fatalf("store failure taken for a miss: %d keys written", kv.setnxs)
				case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
					t.Fatalf("error %v does not carry %v", err, tt.wantErr)
				}
			})
		}
	}
}

func TestManagerStoreErrors(t *testing.T) {
	boom := errors.New("store down")
	for _, rotate := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprint(rotate), func(t *testing.T) {
			kv := newFakeKV()
			m := NewManager(ManagerConfig{KV: kv, Prefix: "p", Rotate: rotate, TTL: time.Hour})
			kv.failGet = boom
			if _, err := m.Keyring(context.Background(), time.Now()); !errors.Is(err, boom) {
				t.Fatalf("store error not returned: %v", err)
			}
			kv.failGet = nil
			if _, err := m.Keyring(context.Background(), time.Now()); err != nil {
				t.Fatalf("failure was cached: %v", err)
			}
		})
	}

	// A key stored with another algorithm is reported, not used.
	kv := newFakeKV()
	b, _ := mustKey(t, EdDSA, "hs256").Marshal()
	kv.data["p/hs256"] = b
	if _, err := NewManager(ManagerConfig{KV: kv, Prefix: "p"}).Keyring(context.Background(), time.Now()); err == nil {
		t.Fatal("stored key of another algorithm accepted")
	}
}

func TestManagerConfigErrors(t *testing.T) {
	kv := newFakeKV()
	for name, cfg := range map[string]ManagerConfig{
		"no store":        {Prefix: "p"},
		"no prefix":       {KV: kv},
		"bad alg":         {KV: kv, Prefix: "p", Alg: "RS256"},
		"negative rotate": {KV: kv, Prefix: "p", Rotate: -time.Hour},
		"sub-second":      {KV: kv, Prefix: "p", Rotate: time.Millisecond},
		"too many keys":   {KV: kv, Prefix: "p", Rotate: time.Minute, TTL: 2 * time.Hour},
	} {
		if _, err := NewManager(cfg).Keyring(context.Background(), time.Now()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if kv.calls() != 0 {
		t.Error("invalid configs touched the store")
	}
	if !NewManager(ManagerConfig{KV: kv, Prefix: "p"}).NextRotation(time.Now()).IsZero() {
		t.Error("NextRotation without rotation is not zero")
	}
}

// base strips the random suffix of a generated key id.
func base(id string) string {
	if i := strings.LastIndexByte(id, '-'); i > 0 && len(id)-i-1 == 8 {
		return id[:i]
	}
	return id
}

// MinRotation is the boundary of the Manager's own rule.
func TestMinRotation(t *testing.T) {
	for _, ttl := range []time.Duration{time.Minute, 2 * time.Hour, 7*time.Hour + 13*time.Second, 30 * 24 * time.Hour} {
		low := MinRotation(ttl)
		kv := newFakeKV()
		ok := NewManager(ManagerConfig{KV: kv, Prefix: "p", Rotate: low, TTL: ttl})
		if err := ok.check(); err != nil {
			t.Errorf("ttl %s: MinRotation %s refused: %v", ttl, low, err)
		}
		short := NewManager(ManagerConfig{KV: kv, Prefix: "p", Rotate: low - time.Second, TTL: ttl})
		if low > time.Second && short.check() == nil {
			t.Errorf("ttl %s: %s, under MinRotation %s, accepted", ttl, low-time.Second, low)
		}
	}
	if got := MinRotation(2 * time.Hour); got != 250*time.Second {
		t.Errorf("MinRotation(2h) = %s, want 4m10s ((2h + 5m) / 30 keys)", got)
	}
}
