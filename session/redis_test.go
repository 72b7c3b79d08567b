package session_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxauth/caddy-wxauth/internal/redistest"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/session/storetest"
)

func newRedis(t *testing.T, cfg session.RedisConfig) *session.Redis {
	t.Helper()
	r, err := session.NewRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRedisStore(t *testing.T) {
	url := redistest.Start(t)
	// One server; each subtest gets its own key space.
	storetest.Run(t, func(t *testing.T) session.Store {
		r := newRedis(t, session.RedisConfig{URL: url, KeyPrefix: "wxauth-test:" + session.NewID() + ":"})
		if err := r.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		return r
	})
}

// TestRedisKeys checks what lands in Redis: prefixed keys with native TTLs,
// their last element as the hash tag.
func TestRedisKeys(t *testing.T) {
	ctx := context.Background()
	url := redistest.Start(t)
	r := newRedis(t, session.RedisConfig{URL: url, KeyPrefix: "wx:"})
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	raw := redis.NewClient(opts)
	defer raw.Close()

	if err := r.Set(ctx, "wxauth/app/sessions/a", []byte("v"), 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := r.Set(ctx, "wxauth/app/keys/k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := raw.Get(ctx, "wx:wxauth/app/sessions/{a}").Result(); err != nil || v != "v" {
		t.Fatalf("raw GET = %q, %v", v, err)
	}
	if ttl, err := raw.PTTL(ctx, "wx:wxauth/app/sessions/{a}").Result(); err != nil || ttl <= time.Second || ttl > 1500*time.Millisecond {
		t.Fatalf("PTTL = %v, %v; want about 1.5s", ttl, err)
	}
	if ttl, err := raw.PTTL(ctx, "wx:wxauth/app/keys/{k}").Result(); err != nil || ttl != -1 {
		t.Fatalf("PTTL of a key without ttl = %v, %v; want -1 (none)", ttl, err)
	}

	unlock, err := r.Lock(ctx, "wxauth/app/refresh")
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := raw.PTTL(ctx, "wx:locks/wxauth/app/{refresh}").Result()
	if err != nil || ttl <= 0 || ttl > 30*time.Second {
		t.Fatalf("lock PTTL = %v, %v; want a bounded lease", ttl, err)
	}
	// A holder whose lease ran out must not release the next holder's lock.
	raw.Set(ctx, "wx:locks/wxauth/app/{refresh}", "someone-else", 0)
	unlock()
	if v, _ := raw.Get(ctx, "wx:locks/wxauth/app/{refresh}").Result(); v != "someone-else" {
		t.Fatalf("unlock deleted another holder's lock (now %q)", v)
	}
}

// TestRedisDown checks that a store whose server is unreachable fails fast.
func TestRedisDown(t *testing.T) {
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()

	mute := muteServer(t)

	for _, tt := range []struct {
		name, addr string
		bound      time.Duration
	}{
		{"refused", refused, 3 * time.Second},
		{"mute", mute, 8 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRedis(t, session.RedisConfig{URL: "redis://" + tt.addr + "/0"})
			ctx := context.Background()
			ops := map[string]func() error{
				"Ping": func() error { return r.Ping(ctx) },
				"Get":  func() error { _, err := r.Get(ctx, "k"); return err },
				"Set":  func() error { return r.Set(ctx, "k", []byte("v"), time.Minute) },
				"Lock": func() error { _, err := r.Lock(ctx, "k"); return err },
			}
			for name, op := range ops {
				start := time.Now()
				err := op()
				el := time.Since(start)
				if err == nil {
					t.Fatalf("%s against a down server succeeded", name)
				}
				if el > tt.bound {
					t.Fatalf("%s took %v to fail, want under %v", name, el, tt.bound)
				}
				t.Logf("%s failed after %v: %v", name, el.Round(time.Millisecond), err)
			}
		})
	}
}

// muteServer returns the address of a server that accepts connections and
// never answers.
func muteServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return l.Addr().String()
}

// TestRedisContextDeadline: the caller's deadline bounds a call even when
// the configured timeouts are long and the server hangs.
func TestRedisContextDeadline(t *testing.T) {
	r := newRedis(t, session.RedisConfig{URL: "redis://" + muteServer(t), ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	for name, op := range map[string]func(context.Context) error{
		"Get":  func(ctx context.Context) error { _, err := r.Get(ctx, "k"); return err },
		"Lock": func(ctx context.Context) error { _, err := r.Lock(ctx, "k"); return err },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		err := op(ctx)
		cancel()
		if err == nil || time.Since(start) > 3*time.Second {
			t.Fatalf("%s with a 300ms deadline: err = %v after %v", name, err, time.Since(start))
		}
	}
}
