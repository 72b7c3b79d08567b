package session_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/session/storetest"
)

func TestCaddyStorageStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) session.Store {
		return session.NewCaddyStorage(&certmagic.FileStorage{Path: t.TempDir()})
	})
}

// TestCaddyStorageInstances has two stores over one folder, as two Caddy
// instances sharing a storage would.
func TestCaddyStorageInstances(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	a := session.NewCaddyStorage(&certmagic.FileStorage{Path: dir})
	b := session.NewCaddyStorage(&certmagic.FileStorage{Path: dir})

	// Both race SetNX on one key from several goroutines each.
	stores := []session.Store{a, b, a, b}
	won := make([]bool, len(stores))
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			won[i], errs[i] = s.SetNX(ctx, "wxauth/app/signing_key", []byte("key-"+strconv.Itoa(i)), 0)
		})
	}
	wg.Wait()
	winner := -1
	for i := range stores {
		if errs[i] != nil {
			t.Fatal(errs[i])
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
	for _, s := range []session.Store{a, b} {
		got, err := s.Get(ctx, "wxauth/app/signing_key")
		if err != nil || string(got) != "key-"+strconv.Itoa(winner) {
			t.Fatalf("Get = %q, %v; want the winner's value", got, err)
		}
	}

	// A lock held by a is held for b, until a releases it.
	unlock, err := a.Lock(ctx, "wxauth/app/refresh")
	if err != nil {
		t.Fatal(err)
	}
	tctx, tcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = b.Lock(tctx, "wxauth/app/refresh")
	tcancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("b took a's lock: err = %v", err)
	}
	released := make(chan time.Time, 1)
	time.AfterFunc(200*time.Millisecond, func() {
		released <- time.Now()
		unlock()
	})
	unlockB, err := b.Lock(ctx, "wxauth/app/refresh")
	if err != nil {
		t.Fatalf("b.Lock after a released: %v", err)
	}
	if time.Now().Before(<-released) {
		t.Fatal("b got the lock before a released it")
	}
	unlockB()

	// Both count under the lock from both instances.
	for _, s := range []session.Store{a, b} {
		wg.Go(func() {
			for range 4 {
				u, err := s.Lock(ctx, "wxauth/app/count")
				if err != nil {
					t.Error(err)
					return
				}
				n := 0
				if v, err := s.Get(ctx, "wxauth/app/n"); err == nil {
					n, _ = strconv.Atoi(string(v))
				}
				time.Sleep(time.Millisecond) // work under the lock, so that a broken lock loses counts
				if err := s.Set(ctx, "wxauth/app/n", []byte(strconv.Itoa(n+1)), 0); err != nil {
					t.Error(err)
				}
				u()
			}
		})
	}
	wg.Wait()
	if v, err := a.Get(ctx, "wxauth/app/n"); err != nil || string(v) != "8" {
		t.Fatalf("count = %q, %v; want 8", v, err)
	}
}

func TestCaddyStorageSweep(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs := &certmagic.FileStorage{Path: dir}
	s := session.NewCaddyStorage(fs)

	set := func(key string, ttl time.Duration) {
		t.Helper()
		if err := s.Set(ctx, key, []byte(key), ttl); err != nil {
			t.Fatal(err)
		}
	}
	set("wxauth/app/sessions/old1", 50*time.Millisecond)
	set("wxauth/app/sessions/old2", 50*time.Millisecond)
	set("wxauth/app/session_keys/deep/old3", 50*time.Millisecond)
	set("wxauth/app/sessions/live", time.Hour)
	set("wxauth/app/keys/forever", 0)
	set("other/old", 50*time.Millisecond) // outside the swept prefix
	// Not ours: left alone.
	if err := fs.Store(ctx, "wxauth/app/foreign", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// other/old was written last: once it reads as expired, so do the rest.
	waitExpired(t, s, "other/old")

	n, err := s.Sweep(ctx, "wxauth/app")
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("Sweep = %d, want 3", n)
	}
	for key, wantFile := range map[string]bool{
		"wxauth/app/sessions/old1":          false,
		"wxauth/app/sessions/old2":          false,
		"wxauth/app/session_keys/deep/old3": false,
		"wxauth/app/sessions/live":          true,
		"wxauth/app/keys/forever":           true,
		"wxauth/app/foreign":                true,
		"other/old":                         true,
	} {
		_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(key)))
		if exists := err == nil; exists != wantFile {
			t.Errorf("%s: file exists = %v, want %v", key, exists, wantFile)
		}
	}
	if n, err := s.Sweep(ctx, "wxauth/app"); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v; want 0", n, err)
	}
	if n, err := s.Sweep(ctx, "no/such/prefix"); err != nil || n != 0 {
		t.Fatalf("Sweep of a missing prefix = %d, %v; want 0, nil", n, err)
	}
}

// waitExpired polls until key reads as expired (Get does not delete it).
func waitExpired(t *testing.T, s *session.CaddyStorage, key string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.Get(context.Background(), key)
		if errors.Is(err, session.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not expire", key)
		}
		time.Sleep(10 * time.Millisecond) // the poll's interval
	}
}

// TestCaddyStorageEnvelope pins the on-disk format that other instances (and
// other versions) read.
func TestCaddyStorageEnvelope(t *testing.T) {
	ctx := context.Background()
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	s := session.NewCaddyStorage(fs)

	before := time.Now()
	if err := s.Set(ctx, "k", []byte("payload"), time.Hour); err != nil {
		t.Fatal(err)
	}
	raw, err := fs.Load(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 4+8+len("payload") || string(raw[:4]) != "wxs1" || string(raw[12:]) != "payload" {
		t.Fatalf("stored %q", raw)
	}
	var nanos int64
	for _, c := range raw[4:12] {
		nanos = nanos<<8 | int64(c)
	}
	if exp := time.Unix(0, nanos); exp.Before(before.Add(time.Hour)) || exp.After(time.Now().Add(time.Hour)) {
		t.Fatalf("expiry header %v, want about an hour from now", exp)
	}

	if err := s.Set(ctx, "forever", []byte("p"), 0); err != nil {
		t.Fatal(err)
	}
	if raw, _ := fs.Load(ctx, "forever"); !bytes.Equal(raw[4:12], make([]byte, 8)) {
		t.Fatalf("no-expiry header %x, want zeros", raw[4:12])
	}

	// A value someone else wrote is neither returned as ours nor overwritten.
	if err := fs.Store(ctx, "foreign", []byte("plain")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "foreign"); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get of a foreign value = %q, %v; want a format error", v, err)
	}
	if ok, err := s.SetNX(ctx, "foreign", []byte("mine"), 0); ok || err == nil {
		t.Fatalf("SetNX over a foreign value = %v, %v; want an error", ok, err)
	}
}
