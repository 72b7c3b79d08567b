package session_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxauth/caddy-wxauth/internal/redistest"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/session/storetest"
)

func pinged(t *testing.T, cfg session.RedisConfig) *session.Redis {
	t.Helper()
	r := newRedis(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRedisClusterStore(t *testing.T) {
	addrs := redistest.StartCluster(t, redistest.ClusterConfig{Password: "cluster-pw"})
	// One cluster; each subtest gets its own key space.
	t.Run("addrs", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) session.Store {
			return pinged(t, session.RedisConfig{
				Mode: session.RedisCluster, Addrs: addrs, Password: "cluster-pw",
				KeyPrefix: "wxauth-test:" + session.NewID() + ":",
			})
		})
	})
	t.Run("url", func(t *testing.T) {
		// One seed node is enough: the client learns the others.
		storetest.Run(t, func(t *testing.T) session.Store {
			return pinged(t, session.RedisConfig{
				Mode:      session.RedisCluster,
				URL:       "redis://:cluster-pw@" + addrs[0] + "?addr=" + addrs[1],
				KeyPrefix: "wxauth-test:" + session.NewID() + ":",
			})
		})
	})
	t.Run("wrong password", func(t *testing.T) {
		refused(t, newRedis(t, session.RedisConfig{Mode: session.RedisCluster, Addrs: addrs, Password: "hunter2-wrong"}))
	})
}

// refused checks that a store with a wrong password "hunter2..." fails
// without showing it.
func refused(t *testing.T, r *session.Redis) {
	t.Helper()
	err := r.Set(context.Background(), "k", []byte("v"), 0)
	if err == nil {
		t.Fatal("Set with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error shows the password: %v", err)
	}
}

// TestRedisClusterHashTags checks on a real cluster that a lock and the key
// it protects share a slot (a script may touch both without CROSSSLOT),
// and that the sessions of one app spread over every master.
func TestRedisClusterHashTags(t *testing.T) {
	ctx := context.Background()
	addrs := redistest.StartCluster(t, redistest.ClusterConfig{})
	r := pinged(t, session.RedisConfig{Mode: session.RedisCluster, Addrs: addrs, KeyPrefix: "wx:"})
	raw := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer raw.Close()

	m := session.NewManager(r, "wxauth/wxapp")
	s, err := m.Create(ctx, "oUser", "", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetSessionKey(ctx, "oUser", "sk", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := r.Set(ctx, "wxauth/wxapp/access_token", []byte("at"), time.Hour); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct{ key, lock string }{
		{"wxauth/wxapp/sessions/" + s.ID, "wxauth/wxapp/sessions/" + s.ID},
		{"wxauth/wxapp/session_keys/oUser", "wxauth/wxapp/session_keys/oUser"},
		{"wxauth/wxapp/access_token", "wxauth/wxapp/access_token.lock"},
	} {
		unlock, err := r.Lock(ctx, tt.lock)
		if err != nil {
			t.Fatal(err)
		}
		key := "wx:" + tagged(tt.key)
		lock := "wx:locks/" + tagged(tt.lock)
		// One script reads the key and checks the lock: a real cluster
		// refuses it with CROSSSLOT unless both hash to one slot.
		got, err := redis.NewScript(`return {redis.call("EXISTS", KEYS[1]), redis.call("EXISTS", KEYS[2])}`).
			Run(ctx, raw, []string{key, lock}).Int64Slice()
		if err != nil {
			t.Fatalf("script over %s and %s: %v", key, lock, err)
		}
		if got[0] != 1 || got[1] != 1 {
			t.Fatalf("EXISTS %s, %s = %v; want both", key, lock, got)
		}
		unlock()
	}

	// Sessions are tagged by their own id, not by the app: they spread.
	for range 30 {
		if _, err := m.Create(ctx, "oUser", "", nil, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	err = raw.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		keys, err := n.Keys(ctx, "wx:wxauth/wxapp/sessions/*").Result()
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return errors.New("a master holds no session of the app")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// tagged writes a store key as the Redis store does: its last element, up
// to the first '.', in braces.
func tagged(key string) string {
	dir, last := key[:strings.LastIndexByte(key, '/')+1], key[strings.LastIndexByte(key, '/')+1:]
	tag, rest, _ := strings.Cut(last, ".")
	if rest != "" {
		rest = "." + rest
	}
	return dir + "{" + tag + "}" + rest
}

func TestRedisSentinelStore(t *testing.T) {
	s := redistest.StartSentinel(t, redistest.SentinelConfig{Password: "master-pw", SentinelPassword: "sentinel-pw"})
	t.Run("addrs", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) session.Store {
			return pinged(t, session.RedisConfig{
				Mode: session.RedisSentinel, MasterName: s.MasterName, Addrs: []string{s.Addr},
				Password: "master-pw", SentinelPassword: "sentinel-pw",
				KeyPrefix: "wxauth-test:" + session.NewID() + ":",
			})
		})
	})
	t.Run("url", func(t *testing.T) {
		// The URL's password is the sentinel's; the master's comes apart.
		storetest.Run(t, func(t *testing.T) session.Store {
			return pinged(t, session.RedisConfig{
				Mode:      session.RedisSentinel,
				URL:       "redis://:sentinel-pw@" + s.Addr + "/3?master_name=" + s.MasterName,
				Password:  "master-pw",
				KeyPrefix: "wxauth-test:" + session.NewID() + ":",
			})
		})
		// Database 3 of the master holds the keys.
		raw := redis.NewClient(&redis.Options{Addr: s.Master(t), Password: "master-pw", DB: 3})
		defer raw.Close()
		if n, err := raw.DBSize(context.Background()).Result(); err != nil || n == 0 {
			t.Fatalf("DBSIZE of database 3 = %d, %v", n, err)
		}
	})
	t.Run("wrong sentinel password", func(t *testing.T) {
		refused(t, newRedis(t, session.RedisConfig{
			Mode: session.RedisSentinel, MasterName: s.MasterName, Addrs: []string{s.Addr},
			Password: "master-pw", SentinelPassword: "hunter2-wrong",
		}))
	})
}

// TestRedisSentinelFailover forces a failover under a store: it works
// again within 10 s, on the new master, and nothing written before is lost.
func TestRedisSentinelFailover(t *testing.T) {
	s := redistest.StartSentinel(t, redistest.SentinelConfig{})
	r := pinged(t, session.RedisConfig{Mode: session.RedisSentinel, MasterName: s.MasterName, Addrs: []string{s.Addr}, KeyPrefix: "wx:"})
	ctx := context.Background()
	m := session.NewManager(r, "wxauth/wxapp")

	var sessions []*session.Session
	for range 20 {
		sess, err := m.Create(ctx, "oUser", "", map[string]any{"role": "a"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, sess)
	}
	if err := m.SetSessionKey(ctx, "oUser", "sk-before", 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Set(ctx, "wxauth/wxapp/keys/k1", []byte("signing key"), 0); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	next := s.Failover(t)
	raw := redis.NewClient(&redis.Options{Addr: next})
	defer raw.Close()
	// Writes work again when they reach the new master. (A write racing
	// the switch may still reach the old master, which loses it when it
	// becomes a replica: callers that must not lose one wait for a replica.)
	deadline := start.Add(10 * time.Second)
	var err error
	for i := 0; ; i++ {
		octx, cancel := context.WithTimeout(ctx, time.Second)
		v := "v" + strconv.Itoa(i)
		if err = r.Set(octx, "wxauth/wxapp/after", []byte(v), 0); err == nil {
			var got string
			got, err = raw.Get(octx, "wx:wxauth/wxapp/{after}").Result()
			if err == nil && got != v {
				err = fmt.Errorf("the new master %s has %q, not %q", next, got, v)
			}
		}
		cancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling for a fact, with a deadline
	}
	if err != nil {
		t.Fatalf("no write reached the new master within 10 s of the failover: %v", err)
	}
	t.Logf("writes reach the new master %v after the failover started", time.Since(start).Round(time.Millisecond))

	for _, sess := range sessions {
		got, err := m.Get(ctx, sess.ID)
		if err != nil || got.OpenID != "oUser" || got.Claims["role"] != "a" {
			t.Fatalf("session %s after the failover: %+v, %v", sess.ID, got, err)
		}
	}
	if k, err := m.SessionKey(ctx, "oUser"); err != nil || k != "sk-before" {
		t.Fatalf("session_key after the failover: %q, %v", k, err)
	}
	if v, err := r.Get(ctx, "wxauth/wxapp/keys/k1"); err != nil || string(v) != "signing key" {
		t.Fatalf("signing key after the failover: %q, %v", v, err)
	}
	// Locks, refreshes and logouts work on the new master.
	if err := m.Extend(ctx, sessions[0], 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(ctx, sessions[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, sessions[1].ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("revoked session after the failover: %v", err)
	}
}
