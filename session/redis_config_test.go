package session

import (
	"strings"
	"testing"
	"time"
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
			r, err := NewRedis(RedisConfig{URL: tt.url})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			o := r.client.Options()
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
	o := r.client.Options()
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRedis(tt.cfg)
			if err == nil {
				r.Close()
				t.Fatal("NewRedis succeeded")
			}
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
