package wxauth

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/wxauth/caddy-wxauth/internal/redistest"
	"github.com/wxauth/caddy-wxauth/session"
)

// TestStoreConfigPlaceholders: every field of the store takes {env.*} and
// {file.*} placeholders.
func TestStoreConfigPlaceholders(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(secret, []byte("file-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"WXT_MASTER": "mymaster", "WXT_SENTINELS": "10.0.0.1:26379, 10.0.0.2:26379",
		"WXT_USER": "app", "WXT_SUSER": "sent", "WXT_SPW": "env-pw", "WXT_DB": "4",
		"WXT_NAME": "redis.internal", "WXT_POOL": "12", "WXT_PREFIX": "prod",
	} {
		t.Setenv(k, v)
	}
	var c StoreConfig
	err := json.Unmarshal([]byte(`{
		"type": "redis-sentinel",
		"master_name": "{env.WXT_MASTER}",
		"addrs": ["{env.WXT_SENTINELS}", "10.0.0.3:26379"],
		"username": "{env.WXT_USER}",
		"password": "{file.`+secret+`}",
		"sentinel_username": "{env.WXT_SUSER}",
		"sentinel_password": "{env.WXT_SPW}",
		"db": "{env.WXT_DB}",
		"tls": true,
		"tls_server_name": "{env.WXT_NAME}",
		"pool_size": "{env.WXT_POOL}",
		"key_prefix": "{env.WXT_PREFIX}:wxauth:"
	}`), &c)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.replacePlaceholders(caddy.NewReplacer()); err != nil {
		t.Fatal(err)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	rc, err := c.redisConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := session.RedisConfig{
		Mode: session.RedisSentinel, MasterName: "mymaster",
		Addrs:    []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"},
		Username: "app", Password: "file-pw", SentinelUsername: "sent", SentinelPassword: "env-pw",
		TLS: true, TLSServerName: "redis.internal", PoolSize: 12, KeyPrefix: "prod:wxauth:",
	}
	if rc.DB == nil || *rc.DB != 4 {
		t.Fatalf("DB = %v, want 4", rc.DB)
	}
	rc.DB = nil
	if !slices.Equal(rc.Addrs, want.Addrs) {
		t.Fatalf("Addrs = %q, want %q", rc.Addrs, want.Addrs)
	}
	rc.Addrs, want.Addrs = nil, nil
	if !reflect.DeepEqual(rc, want) {
		t.Fatalf("config\n%+v, want\n%+v", rc, want)
	}

	// The URL form from one variable, given where addresses go.
	t.Setenv("WXT_URL", "redis://:sentinel-pw@10.0.0.1:26379/1?master_name=m")
	c = StoreConfig{Type: "redis-sentinel", Addrs: []string{"{env.WXT_URL}"}}
	if err := c.replacePlaceholders(caddy.NewReplacer()); err != nil {
		t.Fatal(err)
	}
	if c.URL != "redis://:sentinel-pw@10.0.0.1:26379/1?master_name=m" || c.Addrs != nil {
		t.Fatalf("URL %q, addrs %q", c.URL, c.Addrs)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
}

func TestStoreConfigErrors(t *testing.T) {
	t.Setenv("WXT_BRACES", "{tag}")
	t.Setenv("WXT_EMPTY", "")
	t.Setenv("WXT_WORD", "many")
	tests := []struct {
		c    StoreConfig
		want string
	}{
		{StoreConfig{Type: "redis-cluster", Addrs: []string{"10.0.0.1:7000"}, KeyPrefix: "{env.WXT_BRACES}"}, `key_prefix "{tag}" may not contain '{' or '}'`},
		{StoreConfig{Type: "redis-cluster", Addrs: []string{"10.0.0.1:7000"}, KeyPrefix: "{unknown}"}, `key_prefix "{unknown}" may not contain`},
		{StoreConfig{Type: "redis", URL: "{env.WXT_EMPTY}"}, "store url is empty after replacing placeholders"},
		{StoreConfig{Type: "redis", URL: "redis://h:1", Password: "{env.WXT_EMPTY}"}, "store password is empty after replacing placeholders"},
		{StoreConfig{Type: "redis-cluster", Addrs: []string{"{env.WXT_EMPTY}"}}, "store address is empty after replacing placeholders"},
		{StoreConfig{Type: "redis", URL: "redis://h:1", DB: "{env.WXT_WORD}"}, `store db "many" is not a whole number`},
		{StoreConfig{Type: "redis", URL: "redis://h:1", PoolSize: "-2"}, "store pool_size must not be negative"},
		{StoreConfig{Type: "redis"}, "store redis needs a URL"},
		{StoreConfig{Type: "redis", URL: "127.0.0.1:6379"}, `store redis: redis URL has no scheme; write redis://host:port/db, or rediss://host:port/db for TLS (for "127.0.0.1:6379": redis://127.0.0.1:6379/0)`},
		{StoreConfig{Type: "redis", URL: ":hunter2@10.0.0.1:6379"}, "store redis: redis URL has no scheme; write redis://host:port/db"},
		{StoreConfig{Type: "redis", URL: "http://10.0.0.1:6379"}, "must start with redis:// or rediss://, as in redis://host:port/db"},
		{StoreConfig{Type: "memory", URL: "redis://h:1"}, "store memory takes no options"},
		{StoreConfig{Type: "caddy", TLS: true}, "store caddy takes no options"},
		{StoreConfig{Type: "redis-cluster"}, "store redis-cluster: redis cluster node address (host:port) is required"},
		{StoreConfig{Type: "redis-cluster", Addrs: []string{"10.0.0.1:7000", "{env.WXT_WORD}"}}, `store redis-cluster: redis cluster node address "many" is not host:port`},
		{StoreConfig{Type: "redis-sentinel", Addrs: []string{"10.0.0.1:26379"}}, "store redis-sentinel: redis sentinel needs the master's name"},
		{StoreConfig{Type: "redis-sentinel", URL: "redis://:hunter2@10.0.0.1:26379/0"}, "store redis-sentinel: redis sentinel URL needs the master's name"},
		{StoreConfig{Type: "redis-sentinel", URL: "redis://:hunter2@10.0.0.1:26379/zz?master_name=m"}, "store redis-sentinel: invalid redis sentinel URL"},
		{StoreConfig{Type: "redis", URL: "rediss://:hunter2@10.0.0.1:6379", TLSCA: "/nonexistent/ca.pem"}, "store redis: reading the redis TLS CA file"},
		{StoreConfig{Type: "redis-ring", URL: "redis://h:1"}, "store must be caddy, memory, redis, redis-cluster or redis-sentinel"},
	}
	for _, tt := range tests {
		c := tt.c
		err := c.replacePlaceholders(caddy.NewReplacer())
		if err == nil {
			err = c.validate()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err = %v, want %q", tt.c, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func TestStoreNumberJSON(t *testing.T) {
	var c StoreConfig
	if err := json.Unmarshal([]byte(`{"type":"redis","pool_size":20,"db":"{env.DB}"}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.PoolSize != "20" || c.DB != "{env.DB}" {
		t.Fatalf("pool_size %q, db %q", c.PoolSize, c.DB)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"type":"redis","db":"{env.DB}","pool_size":20}` {
		t.Fatalf("marshalled %s", b)
	}
	for _, bad := range []string{`{"pool_size":1.5}`, `{"db":true}`, `{"db":[1]}`} {
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// TestStoreConfigIdentity: identities name no secret; connections are
// shared only by configs equal in every field.
func TestStoreConfigIdentity(t *testing.T) {
	a := StoreConfig{Type: "redis-sentinel", URL: "redis://sent:hunter2@10.0.0.1:26379/0?master_name=m&password=hunter3", Password: "hunter4"}
	if id := a.identity(); strings.Contains(id, "hunter") || !strings.Contains(id, "10.0.0.1:26379") || !strings.Contains(id, "master_name=m") {
		t.Fatalf("identity %q", id)
	}
	b := a
	b.Password = "other"
	if a.identity() != b.identity() || a.poolKey() == b.poolKey() {
		t.Fatal("a password change must change the pool key only")
	}
	if strings.Contains(a.poolKey(), "hunter") {
		t.Fatalf("pool key %q", a.poolKey())
	}
	c := StoreConfig{Type: "redis-cluster", Addrs: []string{"10.0.0.1:7000"}, KeyPrefix: "x:"}
	d := c
	d.KeyPrefix = "y:"
	if c.identity() == d.identity() {
		t.Fatal("stores with other prefixes have one identity")
	}
}

// TestStoreConfigOpen opens real cluster and sentinel stores from JSON
// configs with placeholders, as the handler does.
func TestStoreConfigOpen(t *testing.T) {
	nodes := redistest.StartCluster(t, redistest.ClusterConfig{Password: "cluster-pw"})
	sent := redistest.StartSentinel(t, redistest.SentinelConfig{Password: "master-pw", SentinelPassword: "sentinel-pw"})
	t.Setenv("WXT_NODES", strings.Join(nodes, ","))
	t.Setenv("WXT_CLUSTER_PW", "cluster-pw")
	t.Setenv("WXT_SENTINEL_URL", "redis://:sentinel-pw@"+sent.Addr+"/2?master_name="+sent.MasterName)
	t.Setenv("WXT_MASTER_PW", "master-pw")

	for _, js := range []string{
		`{"type":"redis-cluster","addrs":["{env.WXT_NODES}"],"password":"{env.WXT_CLUSTER_PW}","pool_size":"4","key_prefix":"t:"}`,
		`{"type":"redis-sentinel","addrs":["{env.WXT_SENTINEL_URL}"],"password":"{env.WXT_MASTER_PW}","key_prefix":"t:"}`,
		`{"type":"redis-sentinel","master_name":"m","addrs":["` + sent.Addr + `"],"password":"master-pw","sentinel_password":"sentinel-pw","db":3}`,
	} {
		var c StoreConfig
		if err := json.Unmarshal([]byte(js), &c); err != nil {
			t.Fatal(err)
		}
		if err := c.replacePlaceholders(caddy.NewReplacer()); err != nil {
			t.Fatal(err)
		}
		if err := c.validate(); err != nil {
			t.Fatal(err)
		}
		st, release, err := c.open(caddy.Context{Context: context.Background()}, "wxauth/wxapp")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := st.Set(ctx, "wxauth/wxapp/k", []byte("v"), time.Minute); err != nil {
			t.Fatalf("%s: Set: %v", js, err)
		}
		if v, err := st.Get(ctx, "wxauth/wxapp/k"); err != nil || string(v) != "v" {
			t.Fatalf("%s: Get = %q, %v", js, v, err)
		}
		cancel()
		if err := release(); err != nil {
			t.Fatal(err)
		}
	}
}
