// Package storetest is the behaviour every session.Store must show, as a
// test suite that each implementation runs against itself.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxauth/caddy-wxauth/session"
)

// shortTTL is long enough that a value read right after it is written is
// still there, short enough to keep the suite fast.
const shortTTL = 800 * time.Millisecond

// Run runs the shared suite. newStore is called once per subtest and must
// return a store that holds no keys.
func Run(t *testing.T, newStore func(t *testing.T) session.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s session.Store)
	}{
		{"GetMissing", testGetMissing},
		{"SetGet", testSetGet},
		{"Overwrite", testOverwrite},
		{"Expiry", testExpiry},
		{"SetNX", testSetNX},
		{"SetNXConcurrent", testSetNXConcurrent},
		{"Delete", testDelete},
		{"LockExclusion", testLockExclusion},
		{"LockContext", testLockContext},
		{"Manager", testManager},
		{"ManagerInvalidIDs", testManagerInvalidIDs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustGet(t *testing.T, s session.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(ctxFor(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func mustMiss(t *testing.T, s session.Store, key string) {
	t.Helper()
	got, err := s.Get(ctxFor(t), key)
	if !errors.Is(err, session.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound (and fs.ErrNotExist)", key, got, err)
	}
}

func mustSet(t *testing.T, s session.Store, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Set(ctxFor(t), key, value, ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func testGetMissing(t *testing.T, s session.Store) {
	mustMiss(t, s, "wxauth/test/missing")
	mustMiss(t, s, "wxauth/test/deeper/missing")
}

func testSetGet(t *testing.T, s session.Store) {
	mustSet(t, s, "wxauth/test/a", []byte("alpha"), 0)
	mustSet(t, s, "wxauth/test/b", []byte{0, 1, 2, 0xff}, time.Hour)
	mustSet(t, s, "wxauth/test/empty", []byte{}, 0)
	mustGet(t, s, "wxauth/test/a", []byte("alpha"))
	mustGet(t, s, "wxauth/test/b", []byte{0, 1, 2, 0xff})
	mustGet(t, s, "wxauth/test/empty", []byte{})

	// The store keeps its own copy.
	v := []byte("original")
	mustSet(t, s, "wxauth/test/copy", v, 0)
	copy(v, "mutated!")
	got, _ := s.Get(ctxFor(t), "wxauth/test/copy")
	copy(got, "mutated!")
	mustGet(t, s, "wxauth/test/copy", []byte("original"))
}

func testOverwrite(t *testing.T, s session.Store) {
	mustSet(t, s, "wxauth/test/k", []byte("one"), 0)
	mustSet(t, s, "wxauth/test/k", []byte("two, longer"), time.Hour)
	mustGet(t, s, "wxauth/test/k", []byte("two, longer"))
	mustSet(t, s, "wxauth/test/k", []byte("3"), 0)
	mustGet(t, s, "wxauth/test/k", []byte("3"))
}

// testExpiry runs every expiry check in one waiting window.
func testExpiry(t *testing.T, s session.Store) {
	ctx := ctxFor(t)
	mustSet(t, s, "wxauth/test/short", []byte("short"), shortTTL)
	mustSet(t, s, "wxauth/test/zero", []byte("zero"), 0)
	mustSet(t, s, "wxauth/test/negative", []byte("negative"), -time.Second)
	// A later write without ttl makes the key permanent.
	mustSet(t, s, "wxauth/test/made-permanent", []byte("v1"), shortTTL)
	mustSet(t, s, "wxauth/test/made-permanent", []byte("v2"), 0)
	if ok, err := s.SetNX(ctx, "wxauth/test/nx", []byte("first"), shortTTL); err != nil || !ok {
		t.Fatalf("SetNX = %v, %v; want true", ok, err)
	}
	m := session.NewManager(s, "wxauth/expiry")
	sess, err := m.Create(ctx, "oExpiry", "", nil, shortTTL)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetSessionKey(ctx, "oExpiry", "sk", shortTTL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mustGet(t, s, "wxauth/test/short", []byte("short"))
	if _, err := m.Get(ctx, sess.ID); err != nil {
		t.Fatalf("session gone before its ttl: %v", err)
	}

	for {
		_, err := s.Get(ctx, "wxauth/test/short")
		if errors.Is(err, session.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > shortTTL+5*time.Second {
			t.Fatal("value with a ttl never expired")
		}
		time.Sleep(50 * time.Millisecond) // the poll's interval
	}
	if el := time.Since(start); el < shortTTL/2 {
		t.Fatalf("value expired after %v, ttl was %v", el, shortTTL)
	}
	// The session_key was written last with shortTTL: once it is gone, so
	// is everything else written with it.
	for {
		_, err := m.SessionKey(ctx, "oExpiry")
		if errors.Is(err, session.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > shortTTL+5*time.Second {
			t.Fatal("session_key with a ttl never expired")
		}
		time.Sleep(50 * time.Millisecond) // the poll's interval
	}

	mustGet(t, s, "wxauth/test/zero", []byte("zero"))
	mustGet(t, s, "wxauth/test/negative", []byte("negative"))
	mustGet(t, s, "wxauth/test/made-permanent", []byte("v2"))
	mustMiss(t, s, "wxauth/test/nx")
	if ok, err := s.SetNX(ctx, "wxauth/test/nx", []byte("second"), 0); err != nil || !ok {
		t.Fatalf("SetNX over an expired key = %v, %v; want true", ok, err)
	}
	mustGet(t, s, "wxauth/test/nx", []byte("second"))
	if _, err := m.Get(ctx, sess.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("expired session: Get err = %v, want ErrNotFound", err)
	}
	if err := m.Extend(ctx, sess, time.Hour); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Extend of an expired session: err = %v, want ErrNotFound", err)
	}
	if _, err := m.SessionKey(ctx, "oExpiry"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("expired session_key: err = %v, want ErrNotFound", err)
	}
}

func testSetNX(t *testing.T, s session.Store) {
	ctx := ctxFor(t)
	ok, err := s.SetNX(ctx, "wxauth/test/nx", []byte("first"), time.Hour)
	if err != nil || !ok {
		t.Fatalf("first SetNX = %v, %v; want true", ok, err)
	}
	ok, err = s.SetNX(ctx, "wxauth/test/nx", []byte("second"), time.Hour)
	if err != nil || ok {
		t.Fatalf("second SetNX = %v, %v; want false", ok, err)
	}
	mustGet(t, s, "wxauth/test/nx", []byte("first"))

	mustSet(t, s, "wxauth/test/existing", []byte("set"), 0)
	if ok, err := s.SetNX(ctx, "wxauth/test/existing", []byte("nx"), 0); err != nil || ok {
		t.Fatalf("SetNX over Set = %v, %v; want false", ok, err)
	}
	mustGet(t, s, "wxauth/test/existing", []byte("set"))

	if err := s.Delete(ctx, "wxauth/test/nx"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.SetNX(ctx, "wxauth/test/nx", []byte("third"), 0); err != nil || !ok {
		t.Fatalf("SetNX after Delete = %v, %v; want true", ok, err)
	}
	mustGet(t, s, "wxauth/test/nx", []byte("third"))
}

func testSetNXConcurrent(t *testing.T, s session.Store) {
	ctx := ctxFor(t)
	const n = 10
	var (
		wg   sync.WaitGroup
		won  = make([]bool, n)
		errs = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			won[i], errs[i] = s.SetNX(ctx, "wxauth/test/race", []byte("value-"+strconv.Itoa(i)), time.Hour)
		})
	}
	wg.Wait()
	winner := -1
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("SetNX #%d: %v", i, errs[i])
		}
		if won[i] {
			if winner >= 0 {
				t.Fatalf("SetNX #%d and #%d both won", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no SetNX won")
	}
	mustGet(t, s, "wxauth/test/race", []byte("value-"+strconv.Itoa(winner)))
}

func testDelete(t *testing.T, s session.Store) {
	ctx := ctxFor(t)
	mustSet(t, s, "wxauth/test/d", []byte("x"), 0)
	mustSet(t, s, "wxauth/test/keep", []byte("y"), 0)
	if err := s.Delete(ctx, "wxauth/test/d"); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, s, "wxauth/test/d")
	mustGet(t, s, "wxauth/test/keep", []byte("y"))
	if err := s.Delete(ctx, "wxauth/test/d"); err != nil {
		t.Fatalf("deleting a deleted key: %v", err)
	}
	if err := s.Delete(ctx, "wxauth/test/never-there"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
}

func testLockExclusion(t *testing.T, s session.Store) {
	ctx := ctxFor(t)
	const (
		workers = 2
		rounds  = 20
	)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range rounds {
				if err := increment(ctx, s, "wxauth/test/counter"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mustGet(t, s, "wxauth/test/counter", []byte(strconv.Itoa(workers*rounds)))
}

// increment does a read-modify-write under the lock, pausing in the middle
// so that a broken lock loses updates.
func increment(ctx context.Context, s session.Store, key string) error {
	unlock, err := s.Lock(ctx, "wxauth/test/counter-lock")
	if err != nil {
		return fmt.Errorf("taking the lock: %w", err)
	}
	defer unlock()
	n := 0
	b, err := s.Get(ctx, key)
	switch {
	case err == nil:
		if n, err = strconv.Atoi(string(b)); err != nil {
			return err
		}
	case !errors.Is(err, session.ErrNotFound):
		return err
	}
	time.Sleep(time.Millisecond)
	return s.Set(ctx, key, []byte(strconv.Itoa(n+1)), 0)
}

func testLockContext(t *testing.T, s session.Store) {
	ctx := ctxFor(t)
	unlock, err := s.Lock(ctx, "wxauth/test/l")
	if err != nil {
		t.Fatal(err)
	}

	// Held: waiting ends with the context.
	tctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	start := time.Now()
	_, err = s.Lock(tctx, "wxauth/test/l")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock of a held name with a deadline: err = %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el < 100*time.Millisecond || el > 3*time.Second {
		t.Fatalf("Lock gave up after %v, deadline was 150ms", el)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := s.Lock(cctx, "wxauth/test/l"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock of a held name, cancelled: err = %v, want Canceled", err)
	}

	// Other names are free.
	other, err := s.Lock(ctx, "wxauth/test/other")
	if err != nil {
		t.Fatalf("Lock of another name: %v", err)
	}
	other()

	// Released: the next Lock succeeds; a second call of the old unlock must
	// not release the new holder.
	unlock()
	unlock2, err := s.Lock(ctx, "wxauth/test/l")
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock()
	tctx, cancel = context.WithTimeout(ctx, 150*time.Millisecond)
	_, err = s.Lock(tctx, "wxauth/test/l")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a stale unlock released the next holder: err = %v", err)
	}
	unlock2()
}

func testManager(t *testing.T, s session.Store) {
	ctx := ctxFor(t)
	m := session.NewManager(s, "wxauth/wxapp1")
	if m.Store() != s {
		t.Fatal("Store() is not the store given")
	}
	claims := map[string]any{"role": "admin", "level": 3}
	sess, err := m.Create(ctx, "oOpenID_1-x", "uUnion", claims, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(sess.ID) != 43 || sess.OpenID != "oOpenID_1-x" || sess.UnionID != "uUnion" {
		t.Fatalf("Create = %+v", sess)
	}
	if d := sess.Expires.Sub(sess.Created); d != time.Hour {
		t.Fatalf("Expires - Created = %v, want 1h", d)
	}

	got, err := m.Get(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != sess.ID || got.OpenID != sess.OpenID || got.UnionID != sess.UnionID ||
		!got.Created.Equal(sess.Created) || !got.Expires.Equal(sess.Expires) ||
		got.Claims["role"] != "admin" || got.Claims["level"] != float64(3) {
		t.Fatalf("Get = %+v, want %+v", got, sess)
	}

	// Sessions of another app are apart.
	if _, err := session.NewManager(s, "wxauth/wxapp2").Get(ctx, sess.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("other app's Get: err = %v, want ErrNotFound", err)
	}

	before := got.Expires
	if err := m.Extend(ctx, got, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if !got.Expires.After(before.Add(59 * time.Minute)) {
		t.Fatalf("Extend: Expires %v, was %v", got.Expires, before)
	}
	again, err := m.Get(ctx, sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Expires.Equal(got.Expires) || !again.Created.Equal(sess.Created) {
		t.Fatalf("after Extend Get = %+v, want Expires %v", again, got.Expires)
	}

	other, err := m.Create(ctx, "oOpenID_1-x", "", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == sess.ID {
		t.Fatal("two sessions got the same id")
	}

	if err := m.Revoke(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, sess.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get after Revoke: err = %v, want ErrNotFound", err)
	}
	if err := m.Extend(ctx, again, time.Hour); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Extend after Revoke: err = %v, want ErrNotFound", err)
	}
	if _, err := m.Get(ctx, sess.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Extend brought a revoked session back: err = %v", err)
	}
	if err := m.Revoke(ctx, sess.ID); err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	if _, err := m.Get(ctx, other.ID); err != nil {
		t.Fatalf("Revoke ended another session: %v", err)
	}

	if _, err := m.SessionKey(ctx, "oOpenID_1-x"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("SessionKey before any: err = %v, want ErrNotFound", err)
	}
	for _, k := range []string{"key-one==", "key-two=="} {
		if err := m.SetSessionKey(ctx, "oOpenID_1-x", k, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if k, err := m.SessionKey(ctx, "oOpenID_1-x"); err != nil || k != "key-two==" {
		t.Fatalf("SessionKey = %q, %v; want the newest", k, err)
	}
	if _, err := m.SessionKey(ctx, "oSomeoneElse"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("SessionKey of another openid: err = %v, want ErrNotFound", err)
	}
	if _, err := m.Create(ctx, "oX", "", nil, 0); err == nil {
		t.Fatal("Create with no lifetime succeeded")
	}
}

func testManagerInvalidIDs(t *testing.T, s session.Store) {
	ctx := ctxFor(t)
	m := session.NewManager(s, "wxauth/wxapp1")

	// A session-shaped value outside the sessions folder, which an id with
	// ".." would reach on a file storage.
	mustSet(t, s, "wxauth/secret", []byte(`{"id":"../../secret","openid":"oEvil","expires":"2999-01-01T00:00:00Z"}`), 0)
	mustSet(t, s, "wxauth/wxapp1/sessions/a/b", []byte(`{"id":"a/b","openid":"oEvil","expires":"2999-01-01T00:00:00Z"}`), 0)

	bad := []string{
		"", ".", "..", "../../secret", "a/b", "a\\b", "a/../b", "x..y",
		"a\x00b", "a\nb", "a\x7fb", "\xff\xfe", strings.Repeat("a", 200),
	}
	for _, id := range bad {
		if _, err := m.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get(%q): err = %v, want ErrNotFound", id, err)
		}
		if _, err := m.SessionKey(ctx, id); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("SessionKey(%q): err = %v, want ErrNotFound", id, err)
		}
		if _, err := m.Create(ctx, id, "", nil, time.Hour); !errors.Is(err, session.ErrInvalidID) {
			t.Errorf("Create(openid %q): err = %v, want ErrInvalidID", id, err)
		}
		if err := m.SetSessionKey(ctx, id, "k", time.Hour); !errors.Is(err, session.ErrInvalidID) {
			t.Errorf("SetSessionKey(%q): err = %v, want ErrInvalidID", id, err)
		}
		if err := m.Revoke(ctx, id); err != nil {
			t.Errorf("Revoke(%q): %v", id, err)
		}
		if err := m.Extend(ctx, &session.Session{ID: id}, time.Hour); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Extend(%q): err = %v, want ErrNotFound", id, err)
		}
	}
	// Revoke of crafted ids deleted nothing.
	mustGet(t, s, "wxauth/secret", []byte(`{"id":"../../secret","openid":"oEvil","expires":"2999-01-01T00:00:00Z"}`))
}
