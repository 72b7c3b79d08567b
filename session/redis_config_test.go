package session

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxauth/caddy-wxauth/internal/testpki"
)

func TestNewRedisURL(t *testing.T) {
	tests := []struct {
		url      string
		addr     string
		user, pw string
		db       int
		tls      bool
	}{
		{url: "redis://127.0.0.1:6379", addr: "127.0.0.1:6379"},
		{url: "redis://localhost", addr: "localhost:6379"},
		{url: "redis://:s3cret@cache.internal:6380/2", addr: "cache.internal:6380", pw: "s3cret", db: 2},
		{url: "redis://app:pa%40ss@10.0.0.5:6379/15", addr: "10.0.0.5:6379", user: "app", pw: "pa@ss", db: 15},
		{url: "rediss://:pw@redis.example:6390/1", addr: "redis.example:6390", pw: "pw", db: 1, tls: true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			ro, err := RedisConfig{URL: tt.url}.options()
			if err != nil {
				t.Fatal(err)
			}
			o := ro.single
			if o.Addr != tt.addr || o.Username != tt.user || o.Password != tt.pw || o.DB != tt.db {
				t.Fatalf("addr %q user %q pw %q db %d; want %q %q %q %d",
					o.Addr, o.Username, o.Password, o.DB, tt.addr, tt.user, tt.pw, tt.db)
			}
			if (o.TLSConfig != nil) != tt.tls {
				t.Fatalf("TLS = %v, want %v", o.TLSConfig != nil, tt.tls)
			}
			if tt.tls && o.TLSConfig.ServerName != strings.Split(tt.addr, ":")[0] {
				t.Fatalf("TLS ServerName = %q", o.TLSConfig.ServerName)
			}
			if o.DialTimeout != 2*time.Second || o.ReadTimeout != time.Second || o.WriteTimeout != time.Second {
				t.Fatalf("timeouts %v %v %v, want the bounded defaults", o.DialTimeout, o.ReadTimeout, o.WriteTimeout)
			}
		})
	}
}

func TestNewRedisConfig(t *testing.T) {
	r, err := NewRedis(RedisConfig{
		URL: "redis://127.0.0.1:1/0", PoolSize: 7, KeyPrefix: "wxauth:",
		DialTimeout: 3 * time.Second, ReadTimeout: 4 * time.Second, WriteTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	o := r.client.(*redis.Client).Options()
	if o.PoolSize != 7 || o.DialTimeout != 3*time.Second || o.ReadTimeout != 4*time.Second || o.WriteTimeout != 5*time.Second {
		t.Fatalf("options not applied: pool %d, timeouts %v %v %v", o.PoolSize, o.DialTimeout, o.ReadTimeout, o.WriteTimeout)
	}
	if r.prefix != "wxauth:" {
		t.Fatalf("prefix %q", r.prefix)
	}
}

func TestNewRedisErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  RedisConfig
	}{
		{"empty", RedisConfig{}},
		{"scheme", RedisConfig{URL: "http://127.0.0.1:6379"}},
		{"unix scheme", RedisConfig{URL: "unix:///tmp/redis.sock"}},
		{"no scheme", RedisConfig{URL: "127.0.0.1:6379"}},
		{"bad db", RedisConfig{URL: "redis://:hunter2secret@127.0.0.1:6379/abc"}},
		{"too many path parts", RedisConfig{URL: "redis://127.0.0.1:6379/1/2"}},
		{"bad port", RedisConfig{URL: "redis://:hunter2secret@127.0.0.1:port/0"}},
		{"control char", RedisConfig{URL: "redis://:hunter2secret@127.0.0.1:6379/0\x7f"}},
		{"bad escape", RedisConfig{URL: "redis://:hunter2%zzsecret@127.0.0.1:6379/0"}},
		{"negative pool", RedisConfig{URL: "redis://127.0.0.1:6379", PoolSize: -1}},
		{"negative timeout", RedisConfig{URL: "redis://127.0.0.1:6379", ReadTimeout: -time.Second}},
		{"negative db", RedisConfig{URL: "redis://127.0.0.1:6379", DB: ptr(-1)}},
		{"prefix brace", RedisConfig{URL: "redis://127.0.0.1:6379", KeyPrefix: "wx{a}:"}},
		{"prefix closing brace", RedisConfig{URL: "redis://127.0.0.1:6379", KeyPrefix: "wx}"}},
		{"mode", RedisConfig{Mode: "ring", URL: "redis://127.0.0.1:6379"}},
		{"single with addrs", RedisConfig{URL: "redis://127.0.0.1:6379", Addrs: []string{"127.0.0.1:6380"}}},
		{"single with master", RedisConfig{URL: "redis://127.0.0.1:6379", MasterName: "m"}},
		{"single with sentinel password", RedisConfig{URL: "redis://127.0.0.1:6379", SentinelPassword: "hunter2secret"}},
		{"tls ca without tls", RedisConfig{URL: "redis://127.0.0.1:6379", TLSCAFile: "/etc/ssl/ca.pem"}},
		{"tls name without tls", RedisConfig{URL: "redis://127.0.0.1:6379", TLSServerName: "redis"}},
		{"missing ca file", RedisConfig{URL: "rediss://:hunter2secret@127.0.0.1:6379", TLSCAFile: "/nonexistent/ca.pem"}},
		{"cluster empty", RedisConfig{Mode: RedisCluster}},
		{"cluster both", RedisConfig{Mode: RedisCluster, URL: "redis://a:1", Addrs: []string{"b:2"}}},
		{"cluster bad addr", RedisConfig{Mode: RedisCluster, Addrs: []string{"10.0.0.1:7000", "10.0.0.2"}}},
		{"cluster addr url", RedisConfig{Mode: RedisCluster, Addrs: []string{"redis://10.0.0.1:7000"}}},
		{"cluster addr no host", RedisConfig{Mode: RedisCluster, Addrs: []string{":7000"}}},
		{"cluster url bad addr", RedisConfig{Mode: RedisCluster, URL: "redis://:hunter2secret@10.0.0.1:7000?addr=10.0.0.2"}},
		{"cluster url unknown option", RedisConfig{Mode: RedisCluster, URL: "redis://:hunter2secret@10.0.0.1:7000?colour=blue"}},
		{"cluster url db", RedisConfig{Mode: RedisCluster, URL: "redis://:hunter2secret@10.0.0.1:7000/3"}},
		{"cluster db", RedisConfig{Mode: RedisCluster, Addrs: []string{"10.0.0.1:7000"}, DB: ptr(2)}},
		{"cluster scheme", RedisConfig{Mode: RedisCluster, URL: "http://:hunter2secret@10.0.0.1:7000"}},
		{"cluster master", RedisConfig{Mode: RedisCluster, Addrs: []string{"10.0.0.1:7000"}, MasterName: "m"}},
		{"cluster sentinel password", RedisConfig{Mode: RedisCluster, Addrs: []string{"10.0.0.1:7000"}, SentinelPassword: "hunter2secret"}},
		{"sentinel no master", RedisConfig{Mode: RedisSentinel, Addrs: []string{"10.0.0.1:26379"}}},
		{"sentinel no addrs", RedisConfig{Mode: RedisSentinel, MasterName: "m"}},
		{"sentinel bad addr", RedisConfig{Mode: RedisSentinel, MasterName: "m", Addrs: []string{"10.0.0.1:26379:1"}}},
		{"sentinel url no master", RedisConfig{Mode: RedisSentinel, URL: "redis://:hunter2secret@10.0.0.1:26379/0"}},
		{"sentinel url and master", RedisConfig{Mode: RedisSentinel, URL: "redis://10.0.0.1:26379/0?master_name=m", MasterName: "m"}},
		{"sentinel url and addrs", RedisConfig{Mode: RedisSentinel, URL: "redis://10.0.0.1:26379/0?master_name=m", Addrs: []string{"10.0.0.2:26379"}}},
		{"sentinel url bad db", RedisConfig{Mode: RedisSentinel, URL: "redis://:hunter2secret@10.0.0.1:26379/x?master_name=m"}},
		{"sentinel url query password", RedisConfig{Mode: RedisSentinel, URL: "redis://10.0.0.1:26379/0?master_name=m&password=hunter2secret&colour=blue"}},
		{"sentinel url bad escape", RedisConfig{Mode: RedisSentinel, URL: "redis://:hunter2%zzsecret@10.0.0.1:26379/0?master_name=m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRedis(tt.cfg)
			if err == nil {
				r.Close()
				t.Fatal("NewRedis succeeded")
			}
			t.Log(err)
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

func TestRedisTTL(t *testing.T) {
	for _, tt := range []struct{ in, want time.Duration }{
		{0, 0}, {-time.Second, 0}, {time.Nanosecond, time.Millisecond},
		{1500 * time.Microsecond, 2 * time.Millisecond}, {time.Second, time.Second},
	} {
		if got := redisTTL(tt.in); got != tt.want {
			t.Errorf("redisTTL(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestRedisConfigCluster(t *testing.T) {
	t.Run("addrs", func(t *testing.T) {
		ro, err := RedisConfig{
			Mode: RedisCluster, Addrs: []string{"10.0.0.1:7000", "[::1]:7001", "redis-2.internal:7002"},
			Username: "app", Password: "pw", PoolSize: 9,
		}.options()
		if err != nil {
			t.Fatal(err)
		}
		o := ro.cluster
		if o == nil || ro.single != nil || ro.failover != nil {
			t.Fatalf("options %+v, want cluster options only", ro)
		}
		if !slices.Equal(o.Addrs, []string{"10.0.0.1:7000", "[::1]:7001", "redis-2.internal:7002"}) ||
			o.Username != "app" || o.Password != "pw" || o.PoolSize != 9 || o.TLSConfig != nil {
			t.Fatalf("options %+v", o)
		}
		if o.DialTimeout != 2*time.Second || o.ReadTimeout != time.Second || o.MaxRetries != 1 || !o.ContextTimeoutEnabled {
			t.Fatalf("timeouts and retries %v %v %d %v", o.DialTimeout, o.ReadTimeout, o.MaxRetries, o.ContextTimeoutEnabled)
		}
	})
	t.Run("url", func(t *testing.T) {
		// A URL may ask for replica reads; they are never used.
		ro, err := RedisConfig{
			Mode: RedisCluster,
			URL:  "rediss://app:s3cret@10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000&read_only=true&route_randomly=true&route_by_latency=true&dial_timeout=5s",
		}.options()
		if err != nil {
			t.Fatal(err)
		}
		o := ro.cluster
		if !slices.Equal(o.Addrs, []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"}) ||
			o.Username != "app" || o.Password != "s3cret" || o.DialTimeout != 5*time.Second {
			t.Fatalf("options %+v", o)
		}
		if o.ReadOnly || o.RouteRandomly || o.RouteByLatency {
			t.Fatalf("replica reads on: ReadOnly %v RouteRandomly %v RouteByLatency %v", o.ReadOnly, o.RouteRandomly, o.RouteByLatency)
		}
		// Each node is checked against its own host, not the first one's.
		if o.TLSConfig == nil || o.TLSConfig.ServerName != "" || o.TLSConfig.MinVersion < 0x0303 {
			t.Fatalf("TLS %+v", o.TLSConfig)
		}
	})
	t.Run("url overridden", func(t *testing.T) {
		ro, err := RedisConfig{
			Mode: RedisCluster, URL: "redis://app:old@10.0.0.1:7000/0",
			Username: "other", Password: "new", TLS: true, TLSServerName: "redis.internal",
		}.options()
		if err != nil {
			t.Fatal(err)
		}
		o := ro.cluster
		if o.Username != "other" || o.Password != "new" || o.TLSConfig == nil || o.TLSConfig.ServerName != "redis.internal" {
			t.Fatalf("options %+v, TLS %+v", o, o.TLSConfig)
		}
	})
}

func TestRedisConfigSentinel(t *testing.T) {
	t.Run("addrs", func(t *testing.T) {
		ro, err := RedisConfig{
			Mode: RedisSentinel, MasterName: "mymaster", Addrs: []string{"10.0.0.1:26379", "10.0.0.2:26379"},
			Username: "app", Password: "master-pw", SentinelUsername: "sent", SentinelPassword: "sentinel-pw",
			DB: ptr(3), PoolSize: 4,
		}.options()
		if err != nil {
			t.Fatal(err)
		}
		o := ro.failover
		if o == nil || ro.single != nil || ro.cluster != nil {
			t.Fatalf("options %+v, want failover options only", ro)
		}
		if o.MasterName != "mymaster" || !slices.Equal(o.SentinelAddrs, []string{"10.0.0.1:26379", "10.0.0.2:26379"}) ||
			o.Username != "app" || o.Password != "master-pw" || o.SentinelUsername != "sent" || o.SentinelPassword != "sentinel-pw" ||
			o.DB != 3 || o.PoolSize != 4 || o.ReplicaOnly {
			t.Fatalf("options %+v", o)
		}
	})
	t.Run("url", func(t *testing.T) {
		// The URL's user:password are the sentinels'; the master's come as
		// parameters. Replica reads asked for in the URL are never used (and
		// route_by_latency would make go-redis panic).
		ro, err := RedisConfig{
			Mode: RedisSentinel,
			URL:  "rediss://sent:sentinel-pw@10.0.0.1:26379/2?master_name=m&addr=10.0.0.2:26379&password=master-pw&replica_only=true&route_by_latency=true&route_randomly=true&use_disconnected_replicas=true",
		}.options()
		if err != nil {
			t.Fatal(err)
		}
		o := ro.failover
		if o.MasterName != "m" || !slices.Equal(o.SentinelAddrs, []string{"10.0.0.1:26379", "10.0.0.2:26379"}) ||
			o.SentinelUsername != "sent" || o.SentinelPassword != "sentinel-pw" || o.Password != "master-pw" || o.DB != 2 {
			t.Fatalf("options %+v", o)
		}
		if o.ReplicaOnly || o.RouteByLatency || o.RouteRandomly || o.UseDisconnectedReplicas {
			t.Fatalf("replica reads on: %+v", o)
		}
		if o.TLSConfig == nil || o.TLSConfig.ServerName != "" {
			t.Fatalf("TLS %+v", o.TLSConfig)
		}
		// The client can be made: go-redis would panic on route_by_latency.
		r, err := NewRedis(RedisConfig{Mode: RedisSentinel, URL: "redis://10.0.0.1:26379/2?master_name=m&route_by_latency=true"})
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	})
	t.Run("url overridden", func(t *testing.T) {
		ro, err := RedisConfig{
			Mode: RedisSentinel, URL: "redis://sent:old@10.0.0.1:26379/2?master_name=m",
			SentinelUsername: "sent2", SentinelPassword: "new", Password: "master-pw", DB: ptr(0),
		}.options()
		if err != nil {
			t.Fatal(err)
		}
		o := ro.failover
		if o.SentinelUsername != "sent2" || o.SentinelPassword != "new" || o.Password != "master-pw" || o.DB != 0 {
			t.Fatalf("options %+v", o)
		}
	})
}

func TestRedisConfigTLS(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, testpki.CAPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, cfg := range []RedisConfig{
		{URL: "redis://10.0.0.1:6379/0", TLS: true, TLSCAFile: ca, TLSServerName: "redis.internal"},
		{Mode: RedisCluster, Addrs: []string{"10.0.0.1:7000"}, TLS: true, TLSCAFile: ca, TLSServerName: "redis.internal"},
		{Mode: RedisSentinel, MasterName: "m", Addrs: []string{"10.0.0.1:26379"}, TLS: true, TLSCAFile: ca, TLSServerName: "redis.internal"},
		{Mode: RedisSentinel, URL: "rediss://10.0.0.1:26379/0?master_name=m", TLSCAFile: ca, TLSServerName: "redis.internal"},
	} {
		ro, err := cfg.options()
		if err != nil {
			t.Fatal(err)
		}
		tc := tlsOf(ro)
		if tc == nil || tc.RootCAs == nil || tc.ServerName != "redis.internal" || tc.MinVersion < tls.VersionTLS12 {
			t.Fatalf("%+v: TLS %+v", cfg, tc)
		}
	}

	_, err := RedisConfig{URL: "redis://10.0.0.1:6379/0", TLS: true, TLSCAFile: notPEM}.options()
	if err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("CA file without a certificate: err = %v", err)
	}
}

func tlsOf(ro redisOptions) *tls.Config {
	switch {
	case ro.single != nil:
		return ro.single.TLSConfig
	case ro.cluster != nil:
		return ro.cluster.TLSConfig
	}
	return ro.failover.TLSConfig
}

func TestRedisKeyTags(t *testing.T) {
	r := &Redis{prefix: "wx:"}
	for _, tt := range []struct{ name, key string }{
		{"wxauth/app/sessions/abc", "wx:wxauth/app/sessions/{abc}"},
		{"locks/wxauth/app/sessions/abc", "wx:locks/wxauth/app/sessions/{abc}"},
		{"wxauth/app/access_token", "wx:wxauth/app/{access_token}"},
		{"wxauth/app/access_token.lock", "wx:wxauth/app/{access_token}.lock"},
		{"wxauth/app/keys/hs256-19876", "wx:wxauth/app/keys/{hs256-19876}"},
		{"locks/sealed/wxauth/app/keys/hs256-19876", "wx:locks/sealed/wxauth/app/keys/{hs256-19876}"},
		{"plain", "wx:{plain}"},
		{".hidden", "wx:{.hidden}"},
		{"dir/", "wx:dir/{}"},
	} {
		if got := r.key(tt.name); got != tt.key {
			t.Errorf("key(%q) = %q, want %q", tt.name, got, tt.key)
		}
	}
}
