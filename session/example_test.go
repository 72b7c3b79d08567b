package session_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/wxauth/caddy-wxauth/session"
)

func ExampleNewMemory() {
	ctx := context.Background()
	m := session.NewMemory()

	if err := m.Set(ctx, "wxauth/demo/greeting", []byte("hello"), time.Minute); err != nil {
		fmt.Println(err)
		return
	}
	v, err := m.Get(ctx, "wxauth/demo/greeting")
	fmt.Println(string(v), err)

	// SetNX stores only when the key is absent: racing writers agree on one value.
	ok, _ := m.SetNX(ctx, "wxauth/demo/greeting", []byte("bonjour"), time.Minute)
	fmt.Println("second SetNX stored:", ok)

	_ = m.Delete(ctx, "wxauth/demo/greeting")
	_, err = m.Get(ctx, "wxauth/demo/greeting")
	fmt.Println(errors.Is(err, session.ErrNotFound))

	// Expired entries read as absent; Sweep frees them.
	_ = m.Set(ctx, "wxauth/demo/short", []byte("x"), time.Second)
	fmt.Println("swept:", m.Sweep(time.Now().Add(time.Hour)))
	// Output:
	// hello <nil>
	// second SetNX stored: false
	// true
	// swept: 1
}

func ExampleNewManager() {
	ctx := context.Background()
	m := session.NewManager(session.NewMemory(), "wxauth/wxdemo0123456789")

	// Login: a session for the openid, with claims from the login hook.
	s, err := m.Create(ctx, "o-demo-openid", "u-demo-unionid", map[string]any{"uid": 42}, 2*time.Hour)
	if err != nil {
		fmt.Println(err)
		return
	}
	// The newest session_key of the openid is kept apart from the session.
	_ = m.SetSessionKey(ctx, "o-demo-openid", "tiihtNczf5v6AKRyjwEUhQ==", 0)

	got, err := m.Get(ctx, s.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.OpenID, got.UnionID, got.Claims["uid"], got.Expires.Sub(got.Created))
	key, _ := m.SessionKey(ctx, "o-demo-openid")
	fmt.Println(key)

	// Logout.
	if err := m.Revoke(ctx, s.ID); err != nil {
		fmt.Println(err)
		return
	}
	_, err = m.Get(ctx, s.ID)
	fmt.Println(errors.Is(err, session.ErrNotFound))
	// Output:
	// o-demo-openid u-demo-unionid 42 2h0m0s
	// tiihtNczf5v6AKRyjwEUhQ==
	// true
}

func ExampleNewCaddyStorage() {
	dir, err := os.MkdirTemp("", "wxauth-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	// In Caddy this is ctx.Storage(): every instance sharing it shares the state.
	ctx := context.Background()
	s := session.NewCaddyStorage(&certmagic.FileStorage{Path: dir})

	if err := s.Set(ctx, "wxauth/demo/greeting", []byte("hello"), time.Hour); err != nil {
		fmt.Println(err)
		return
	}
	v, err := s.Get(ctx, "wxauth/demo/greeting")
	fmt.Println(string(v), err)
	_, err = os.Stat(filepath.Join(dir, "wxauth", "demo", "greeting"))
	fmt.Println("kept on disk:", err == nil)

	// A cluster-wide lock, through the storage's own locking.
	unlock, err := s.Lock(ctx, "wxauth/demo/job")
	if err != nil {
		fmt.Println(err)
		return
	}
	unlock()

	// Storage has no expiry of its own: expired values read as absent and
	// Sweep deletes them.
	_ = s.Set(ctx, "wxauth/demo/short", []byte("x"), time.Millisecond)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if _, err = s.Get(ctx, "wxauth/demo/short"); err != nil {
			break // expired
		}
	}
	fmt.Println(errors.Is(err, session.ErrNotFound))
	n, err := s.Sweep(ctx, "wxauth/demo")
	fmt.Println("swept:", n, err)
	// Output:
	// hello <nil>
	// kept on disk: true
	// true
	// swept: 1 <nil>
}

func ExampleNewRedis() {
	// NewRedis checks the configuration but does not connect, so this runs
	// without a server; call Ping to check that Redis answers.
	r, err := session.NewRedis(session.RedisConfig{
		URL:       "redis://:pass@127.0.0.1:6379/0",
		PoolSize:  20,
		KeyPrefix: "wxauth:",
	})
	fmt.Println(err)
	if err == nil {
		defer r.Close()
	}

	// Configuration errors never show the password.
	_, err = session.NewRedis(session.RedisConfig{URL: "http://:pass@127.0.0.1:6379/0"})
	fmt.Println(err)
	// Output:
	// <nil>
	// session: redis URL must start with redis:// or rediss://, as in redis://host:port/db (rediss:// for TLS)
}

func ExampleSealed() {
	ctx := context.Background()
	raw := session.NewMemory()
	// In wxauth the key is derived from the app secret; any 32 bytes work.
	store, err := session.Sealed(raw, session.RandomKey())
	if err != nil {
		fmt.Println(err)
		return
	}
	m := session.NewManager(store, "wxauth/wx0123456789abcdef")
	_ = m.SetSessionKey(ctx, "oUser", "tiihtNczf5v6AKRyjwEUhQ==", time.Hour)

	stored, _ := raw.Get(ctx, "wxauth/wx0123456789abcdef/session_keys/oUser")
	key, _ := m.SessionKey(ctx, "oUser")
	fmt.Println(string(stored) == "tiihtNczf5v6AKRyjwEUhQ==", key)
	// Output: false tiihtNczf5v6AKRyjwEUhQ==
}
