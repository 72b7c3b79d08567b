package wxauth

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/wxauth/caddy-wxauth/session"
)

// StoreConfig says where wxauth keeps its state.
type StoreConfig struct {
	// caddy (default): Caddy's configured storage, shared by every instance
	// that shares it; memory: this process only, lost on restart (kept across
	// config reloads); redis: a Redis server shared by a cluster.
	Type string `json:"type,omitempty"`
	// For redis: redis://[:password@]host:port/db or rediss:// for TLS.
	URL string `json:"url,omitempty"`
	// For redis: connection pool size; 0 = go-redis' default.
	PoolSize int `json:"pool_size,omitempty"`
	// For redis: prefix of every key, to share one database between apps.
	KeyPrefix string `json:"key_prefix,omitempty"`
}

func (c *StoreConfig) validate() error {
	switch c.Type {
	case "", "caddy", "memory":
		if c.URL != "" || c.PoolSize != 0 || c.KeyPrefix != "" {
			return fmt.Errorf("wxauth: url, pool_size and key_prefix only apply to store redis")
		}
	case "redis":
		if c.URL == "" {
			return fmt.Errorf("wxauth: store redis needs a URL, e.g. redis://127.0.0.1:6379/0")
		}
		if c.PoolSize < 0 {
			return fmt.Errorf("wxauth: store redis pool_size must not be negative")
		}
	default:
		return fmt.Errorf("wxauth: store must be caddy, memory or redis, not %q", c.Type)
	}
	return nil
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
// see the same data. (Caddy's storage is the configured one; it is not
// named here, as its config may hold credentials.)
func (c *StoreConfig) identity() string {
	switch c.Type {
	case "redis":
		return fmt.Sprintf("redis %s %s", c.URL, c.KeyPrefix)
	case "memory":
		return "memory"
	}
	return "caddy"
}

// open returns the store (with its feed maker) and a function that releases it.
func (c *StoreConfig) open(ctx caddy.Context, prefix string) (pooledStore, func() error, error) {
	switch c.Type {
	case "", "caddy":
		st := session.NewCaddyStorage(ctx.Storage())
		return pooledStore{Store: st, sweep: func(ctx context.Context, prefix string, _ time.Time) {
			_, _ = st.Sweep(ctx, prefix)
		}}, nil, nil
	case "memory":
		return c.pooled("memory/"+prefix, func() (pooledStore, error) {
			m := session.NewMemory()
			return pooledStore{Store: m, sweep: func(_ context.Context, _ string, now time.Time) { m.Sweep(now) }}, nil
		})
	case "redis":
		key := fmt.Sprintf("%s %d", c.identity(), c.PoolSize)
		return c.pooled(key, func() (pooledStore, error) {
			r, err := session.NewRedis(session.RedisConfig{URL: c.URL, PoolSize: c.PoolSize, KeyPrefix: c.KeyPrefix})
			if err != nil {
				return pooledStore{}, fmt.Errorf("wxauth: store redis: %w", err)
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

// changeBound is how long an instance may lag behind the change feed of
// this store before it confirms tokens in the store again.
func (c *StoreConfig) changeBound() time.Duration {
	if c.Type == "redis" {
		return time.Second
	}
	return 2 * time.Second
}
