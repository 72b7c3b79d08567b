package wxauth

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/wxauth/caddy-wxauth/session"
)

// StoreConfig says where wxauth keeps its state. Placeholders ({env.*},
// {file.*}) work in every text and number field; they are replaced when the
// handler is provisioned.
type StoreConfig struct {
	// caddy (default): Caddy's configured storage, shared by every instance
	// that shares it; memory: this process only, lost on restart (kept across
	// config reloads); redis: one Redis server; redis-cluster: a Redis
	// Cluster; redis-sentinel: a Redis master found through Redis Sentinel.
	// Redis is only ever read from its masters, never from replicas.
	Type string `json:"type,omitempty"`
	// The Redis servers as a URL:
	//   - redis (required): redis://[[user]:password@]host:port/db, or
	//     rediss:// for TLS.
	//   - redis-cluster, instead of addrs:
	//     redis://[user:password@]host:port?addr=host2:port2&addr=...
	//   - redis-sentinel, instead of master_name and addrs:
	//     redis://[user:password@]host:port/db?master_name=<name>&addr=host2:port2&addr=...
	//     where host:port and each addr are sentinels, and the user:password
	//     are the SENTINELS' credentials, not the master's: the master's go
	//     in username and password.
	URL string `json:"url,omitempty"`
	// For redis-cluster: host:port of cluster nodes (some are enough; the
	// client finds the others). For redis-sentinel: host:port of sentinels.
	// An entry that holds several after placeholders are replaced
	// (separated by commas or spaces) counts as several, and a lone entry
	// that becomes a redis:// URL counts as the url.
	Addrs []string `json:"addrs,omitempty"`
	// For redis-sentinel: the name the sentinels monitor the master under.
	MasterName string `json:"master_name,omitempty"`
	// For Redis: the user of the data nodes (the server, the cluster's nodes,
	// or the master behind the sentinels); replaces the URL's.
	Username string `json:"username,omitempty"`
	// For Redis: the password of the data nodes; replaces the URL's.
	Password string `json:"password,omitempty"`
	// For redis-sentinel: the sentinels' user; replaces the URL's.
	SentinelUsername string `json:"sentinel_username,omitempty"`
	// For redis-sentinel: the sentinels' password; replaces the URL's.
	SentinelPassword string `json:"sentinel_password,omitempty"`
	// For redis and redis-sentinel: the database number; replaces the URL's
	// (default 0). A cluster has only database 0.
	DB StoreNumber `json:"db,omitempty"`
	// For Redis: connect with TLS, as rediss:// does.
	TLS bool `json:"tls,omitempty"`
	// For Redis with TLS: a PEM file of the certificate authorities that
	// sign the servers' certificates, instead of the system's.
	TLSCA string `json:"tls_ca,omitempty"`
	// For Redis with TLS: the name the servers' certificates carry;
	// default: the host of each address dialled.
	TLSServerName string `json:"tls_server_name,omitempty"`
	// For Redis: connection pool size (per node for redis-cluster); 0 =
	// go-redis' default.
	PoolSize StoreNumber `json:"pool_size,omitempty"`
	// For Redis: prefix of every key, to share one database between apps.
	// It may not contain '{' or '}': Redis Cluster reads them as a hash tag.
	KeyPrefix string `json:"key_prefix,omitempty"`
}

// StoreNumber is a whole number of the store's config: a JSON number, or a
// string that may hold placeholders ("{env.REDIS_DB}"), replaced and read
// when the handler is provisioned. Empty means unset.
type StoreNumber string

// UnmarshalJSON takes a whole number or a string.
func (n *StoreNumber) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*n = StoreNumber(s)
		return nil
	}
	if _, err := strconv.Atoi(string(b)); err != nil {
		return fmt.Errorf("wxauth: store: %s is not a whole number or a string", b)
	}
	*n = StoreNumber(b)
	return nil
}

// MarshalJSON writes a number when n is one, else a string.
func (n StoreNumber) MarshalJSON() ([]byte, error) {
	if v, err := strconv.Atoi(string(n)); err == nil && strconv.Itoa(v) == string(n) {
		return []byte(n), nil
	}
	return json.Marshal(string(n))
}

// int reads n; unset is 0 (ok false).
func (n StoreNumber) int(name string) (v int, ok bool, err error) {
	if n == "" {
		return 0, false, nil
	}
	v, err = strconv.Atoi(string(n))
	if err != nil {
		return 0, false, fmt.Errorf("wxauth: store %s %q is not a whole number", name, string(n))
	}
	return v, true, nil
}

// replacePlaceholders replaces the placeholders of every field with repl's
// values ({env.*}, {file.*}), in place. A field that holds something and
// becomes empty is an error.
func (c *StoreConfig) replacePlaceholders(repl *caddy.Replacer) error {
	if c == nil {
		return nil
	}
	fields := []struct {
		name string
		v    *string
	}{
		{"url", &c.URL},
		{"master_name", &c.MasterName},
		{"username", &c.Username},
		{"password", &c.Password},
		{"sentinel_username", &c.SentinelUsername},
		{"sentinel_password", &c.SentinelPassword},
		{"db", (*string)(&c.DB)},
		{"tls_ca", &c.TLSCA},
		{"tls_server_name", &c.TLSServerName},
		{"pool_size", (*string)(&c.PoolSize)},
		{"key_prefix", &c.KeyPrefix},
	}
	for _, f := range fields {
		var err error
		if *f.v, err = expandPlaceholders(repl, "store "+f.name, *f.v); err != nil {
			return err
		}
	}
	var addrs []string
	for _, a := range c.Addrs {
		a, err := expandPlaceholders(repl, "store address", a)
		if err != nil {
			return err
		}
		if a == "" {
			return fmt.Errorf("wxauth: store address is empty")
		}
		addrs = append(addrs, strings.FieldsFunc(a, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })...)
	}
	c.Addrs = addrs
	// One {env.REDIS_URL} works in either place.
	if len(c.Addrs) == 1 && c.URL == "" && c.MasterName == "" && strings.Contains(c.Addrs[0], "://") {
		c.URL, c.Addrs = c.Addrs[0], nil
	}
	return nil
}

func (c *StoreConfig) validate() error {
	switch c.Type {
	case "", "caddy", "memory":
		if c.URL != "" || len(c.Addrs) > 0 || c.MasterName != "" || c.Username != "" || c.Password != "" ||
			c.SentinelUsername != "" || c.SentinelPassword != "" || c.DB != "" || c.TLS || c.TLSCA != "" ||
			c.TLSServerName != "" || c.PoolSize != "" || c.KeyPrefix != "" {
			return fmt.Errorf("wxauth: store %s takes no options; url, addrs, credentials, tls, pool_size and key_prefix are for the redis stores", c.Type)
		}
		return nil
	case "redis", "redis-cluster", "redis-sentinel":
	default:
		return fmt.Errorf("wxauth: store must be caddy, memory, redis, redis-cluster or redis-sentinel, not %q", c.Type)
	}
	if c.Type == "redis" && c.URL == "" {
		return fmt.Errorf("wxauth: store redis needs a URL, e.g. redis://127.0.0.1:6379/0")
	}
	rc, err := c.redisConfig()
	if err != nil {
		return err
	}
	if err := rc.Validate(); err != nil {
		return fmt.Errorf("wxauth: store %s: %s", c.Type, strings.TrimPrefix(err.Error(), "session: "))
	}
	return nil
}

// redisConfig is the session package's config of a Redis store.
func (c *StoreConfig) redisConfig() (session.RedisConfig, error) {
	rc := session.RedisConfig{
		URL: c.URL, Addrs: c.Addrs, MasterName: c.MasterName,
		Username: c.Username, Password: c.Password,
		SentinelUsername: c.SentinelUsername, SentinelPassword: c.SentinelPassword,
		TLS: c.TLS, TLSCAFile: c.TLSCA, TLSServerName: c.TLSServerName,
		KeyPrefix: c.KeyPrefix,
	}
	switch c.Type {
	case "redis-cluster":
		rc.Mode = session.RedisCluster
	case "redis-sentinel":
		rc.Mode = session.RedisSentinel
	}
	pool, _, err := c.PoolSize.int("pool_size")
	if err != nil {
		return rc, err
	}
	if pool < 0 {
		return rc, fmt.Errorf("wxauth: store pool_size must not be negative")
	}
	rc.PoolSize = pool
	db, set, err := c.DB.int("db")
	if err != nil {
		return rc, err
	}
	if set {
		rc.DB = &db
	}
	return rc, nil
}

// stores holds memory and Redis stores across config reloads, so a reload
// keeps sessions and reuses connections.
var stores = caddy.NewUsagePool()

type pooledStore struct {
	session.Store
	// feed returns the store's change feed under key name, or nil when
	// the store is this process's alone.
	feed func(name string, retention time.Duration) session.Feed
	// sweep, when set, deletes expired entries under prefix; stores with
	// native expiry have none.
	sweep func(ctx context.Context, prefix string, now time.Time)
	close func() error
}

// Destruct closes the store when the last config using it is unloaded.
func (p pooledStore) Destruct() error {
	if p.close != nil {
		return p.close()
	}
	return nil
}

// identity names the store a config uses: configs with equal identities
// see the same data. It names no credential. (Caddy's storage is the
// configured one; it is not named here, as its config may hold credentials.)
func (c *StoreConfig) identity() string {
	switch c.Type {
	case "redis", "redis-cluster", "redis-sentinel":
		return fmt.Sprintf("%s %s %s %s db=%s %s", c.Type, withoutCredentials(c.URL), strings.Join(c.Addrs, ","), c.MasterName, c.DB, c.KeyPrefix)
	case "memory":
		return "memory"
	}
	return "caddy"
}

// withoutCredentials returns a Redis URL without its user info and
// password parameters.
func withoutCredentials(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User = nil
	q := u.Query()
	q.Del("username")
	q.Del("password")
	u.RawQuery = q.Encode()
	return u.String()
}

// poolKey names a Redis client: configs that differ in any field, secrets
// included, get their own connections. It is a hash, so no secret is kept
// in the pool's keys.
func (c *StoreConfig) poolKey() string {
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return "redis " + hex.EncodeToString(sum[:])
}

// open returns the store (with its feed maker) and a function that releases it.
func (c *StoreConfig) open(ctx caddy.Context, prefix string) (pooledStore, func() error, error) {
	switch c.Type {
	case "", "caddy":
		st := session.NewCaddyStorage(ctx.Storage())
		var feed *session.StorageFeed
		return pooledStore{
			Store: st,
			feed: func(name string, retention time.Duration) session.Feed {
				feed = session.NewStorageFeed(ctx.Storage(), name, retention)
				return feed
			},
			sweep: func(ctx context.Context, prefix string, now time.Time) {
				_, _ = st.Sweep(ctx, prefix)
				if feed != nil {
					_, _ = feed.Sweep(ctx, now)
				}
			},
		}, nil, nil
	case "memory":
		return c.pooled("memory/"+prefix, func() (pooledStore, error) {
			m, feed := session.NewMemory(), session.NewMemoryFeed()
			return pooledStore{
				Store: m,
				// One feed per app (the pool key names it): the app's
				// handlers in this process follow it.
				feed:  func(string, time.Duration) session.Feed { return feed },
				sweep: func(_ context.Context, _ string, now time.Time) { m.Sweep(now) },
			}, nil
		})
	case "redis", "redis-cluster", "redis-sentinel":
		rc, err := c.redisConfig()
		if err != nil {
			return pooledStore{}, nil, err
		}
		return c.pooled(c.poolKey(), func() (pooledStore, error) {
			r, err := session.NewRedis(rc)
			if err != nil {
				return pooledStore{}, fmt.Errorf("wxauth: store %s: %w", c.Type, err)
			}
			return pooledStore{Store: r, close: r.Close, feed: func(name string, retention time.Duration) session.Feed {
				return r.Feed(name, retention)
			}}, nil
		})
	}
	return pooledStore{}, nil, fmt.Errorf("wxauth: unknown store %q", c.Type)
}

func (c *StoreConfig) pooled(key string, mk func() (pooledStore, error)) (pooledStore, func() error, error) {
	v, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) { return mk() })
	if err != nil {
		return pooledStore{}, nil, err
	}
	release := func() error {
		_, err := stores.Delete(key)
		return err
	}
	return v.(pooledStore), release, nil
}

// sweepEvery is how often expired state is swept from stores without
// native expiry.
const sweepEvery = 10 * time.Minute

// sweeper runs sweep every sweepEvery, on one instance at a time: the one
// that holds the store's sweep lock.
func sweeper(st session.Store, prefix string, sweep func(context.Context, string, time.Time)) func(context.Context) {
	return func(ctx context.Context) {
		every(ctx, sweepEvery, func(now time.Time) {
			lctx, cancel := context.WithTimeout(ctx, time.Second)
			unlock, err := st.Lock(lctx, prefix+"/sweep")
			cancel()
			if err != nil {
				return // another instance sweeps, or the store is down: next time
			}
			defer unlock()
			sctx, cancel := context.WithTimeout(ctx, sweepEvery/2)
			defer cancel()
			sweep(sctx, prefix, now)
		})
	}
}

// changeBound is how soon every instance applies a change made on another
// (a logout, a user's sessions ended, a claim change) on this store.
func (c *StoreConfig) changeBound() time.Duration {
	if strings.HasPrefix(c.Type, "redis") {
		return time.Second
	}
	return 2 * time.Second
}

// feedLag is how far behind now the feed's catch-up time is when all is
// well: a Redis follower is caught up as each read returns; a storage
// follower lists once a second and allows for instances' clocks being up
// to 2 s apart.
func (c *StoreConfig) feedLag() time.Duration {
	if strings.HasPrefix(c.Type, "redis") {
		return 500 * time.Millisecond
	}
	return 3500 * time.Millisecond
}

// openStore opens the configured store, shared with other configs of this
// process, and seals it. Everything is sealed with a key derived from the app
// secret (see sealSecret), which lives in the config, not in the store: a
// copy of the store gives away no session_key, signing key or access_token.
func (h *Handler) openStore(ctx caddy.Context) (pooledStore, []byte, error) {
	prefix := "wxauth/" + h.storeName()
	if kind, appID, _ := h.anchor(); h.AppID == "" {
		h.logger.Info("no WeChat mini-program app_id: the store is named and sealed by one app; changing its secret, "+
			"or adding a block that sorts before it, starts a new store (every session and key anew)",
			zap.String("by", kind), zap.String("app_id", appID))
	}
	opened, release, err := h.Store.open(ctx, prefix)
	if err != nil {
		return opened, nil, err
	}
	h.release = release
	sealKey, err := hkdf.Key(sha256.New, []byte(h.sealSecret()), nil, "caddy-wxauth store "+h.AppID, 32)
	if err != nil {
		return opened, nil, fmt.Errorf("wxauth: deriving the store key: %w", err)
	}
	store, err := session.Sealed(opened.Store, sealKey)
	if err != nil {
		return opened, nil, fmt.Errorf("wxauth: sealing the store: %w", err)
	}
	h.prefix, h.store = prefix, store
	h.sessions = session.NewManager(store, prefix)
	h.sessions.SetMaxAge(time.Duration(h.SessionMaxAge))
	return opened, sealKey, nil
}
