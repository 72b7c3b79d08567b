package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig configures a Redis store.
type RedisConfig struct {
	// URL is redis://[[user]:password@]host:port/db, or rediss:// for TLS.
	URL string
	// PoolSize is the most connections kept open; 0 means go-redis's default.
	PoolSize int
	// KeyPrefix is prepended to every key and lock name, e.g. "wxauth:".
	KeyPrefix string
	// DialTimeout bounds connecting; 0 means 2s.
	DialTimeout time.Duration
	// ReadTimeout bounds waiting for a reply; 0 means 1s.
	ReadTimeout time.Duration
	// WriteTimeout bounds sending a command; 0 means 1s.
	WriteTimeout time.Duration
}

// Default timeouts: a request that needs the store should fail fast rather
// than hang when Redis is unreachable.
const (
	defaultRedisDialTimeout  = 2 * time.Second
	defaultRedisReadTimeout  = time.Second
	defaultRedisWriteTimeout = time.Second
)

// Redis lock settings. A lock expires after redisLockTTL so a crashed holder
// cannot block the cluster forever; critical sections must be shorter.
const (
	redisLockTTL   = 30 * time.Second
	redisLockRetry = 20 * time.Millisecond
	// redisLockSpace holds lock keys (after KeyPrefix); like Caddy's storage,
	// the "locks/" key space is reserved.
	redisLockSpace = "locks/"
)

// redisUnlock deletes the lock key only while it still holds our token, so a
// holder whose lock expired cannot release someone else's.
var redisUnlock = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// Redis is a Store in Redis with native expiry, shared by every instance
// connected to the same server and database.
type Redis struct {
	client *redis.Client
	prefix string
}

// NewRedis checks cfg and returns a Redis store. It does not connect; use
// Ping to check that the server answers.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.URL == "" {
		return nil, errors.New("session: redis URL is required")
	}
	if cfg.PoolSize < 0 || cfg.DialTimeout < 0 || cfg.ReadTimeout < 0 || cfg.WriteTimeout < 0 {
		return nil, errors.New("session: redis pool size and timeouts must not be negative")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// *url.Error quotes the whole URL, password included; keep its cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("session: invalid redis URL: %v", redactPassword(err, cfg.URL))
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, errors.New("session: redis URL must start with redis:// or rediss://")
	}
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("session: invalid redis URL: %v", redactPassword(err, cfg.URL))
	}
	if cfg.PoolSize > 0 {
		opts.PoolSize = cfg.PoolSize
	}
	opts.DialTimeout = orDefault(cfg.DialTimeout, opts.DialTimeout, defaultRedisDialTimeout)
	opts.ReadTimeout = orDefault(cfg.ReadTimeout, opts.ReadTimeout, defaultRedisReadTimeout)
	opts.WriteTimeout = orDefault(cfg.WriteTimeout, opts.WriteTimeout, defaultRedisWriteTimeout)
	// Few retries so an unreachable server costs a bounded, short time, and
	// honour the caller's deadline.
	opts.MaxRetries = 1
	opts.DialerRetries = 1
	opts.ContextTimeoutEnabled = true
	return &Redis{client: redis.NewClient(opts), prefix: cfg.KeyPrefix}, nil
}

// orDefault picks the configured value, else one set in the URL's query,
// else the package default.
func orDefault(configured, fromURL, def time.Duration) time.Duration {
	switch {
	case configured > 0:
		return configured
	case fromURL > 0:
		return fromURL
	}
	return def
}

// redactPassword returns err's text with the URL's password (if any) masked.
func redactPassword(err error, rawURL string) string {
	msg := err.Error()
	if u, perr := url.Parse(rawURL); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	} else if i := strings.LastIndex(rawURL, "@"); i > 0 {
		// Unparsable URL: mask everything before '@' that may be a secret.
		if j := strings.Index(rawURL, "://"); j >= 0 && j+3 < i {
			msg = strings.ReplaceAll(msg, rawURL[j+3:i], "xxxxx")
		}
	}
	return msg
}

// Ping checks that the server answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("session: redis ping: %w", err)
	}
	return nil
}

// Close closes the connections.
func (r *Redis) Close() error {
	return r.client.Close()
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: redis get: %w", err)
	}
	return b, nil
}

// Set implements Store.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := r.client.Set(ctx, r.prefix+key, value, redisTTL(ttl)).Err(); err != nil {
		return fmt.Errorf("session: redis set: %w", err)
	}
	return nil
}

// SetNX implements Store with SET NX PX.
func (r *Redis) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ok, err := r.client.SetNX(ctx, r.prefix+key, value, redisTTL(ttl)).Result()
	if err != nil {
		return false, fmt.Errorf("session: redis setnx: %w", err)
	}
	return ok, nil
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, key string) error {
	if err := r.client.Del(ctx, r.prefix+key).Err(); err != nil {
		return fmt.Errorf("session: redis del: %w", err)
	}
	return nil
}

// Lock implements Store with SET NX PX of a random token, retried until it
// succeeds or ctx ends. The lock expires after 30s even if never released.
func (r *Redis) Lock(ctx context.Context, name string) (func(), error) {
	key := r.prefix + redisLockSpace + name
	var tok [16]byte
	rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])

	for {
		ok, err := r.client.SetNX(ctx, key, token, redisLockTTL).Result()
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, ctxErr
			}
			return nil, fmt.Errorf("session: redis lock: %w", err)
		}
		if ok {
			break
		}
		t := time.NewTimer(redisLockRetry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}

	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
			defer cancel()
			// On failure the lock lapses after redisLockTTL.
			_ = redisUnlock.Run(ctx, r.client, []string{key}, token).Err()
		})
	}, nil
}

// redisTTL maps a Store ttl to go-redis's expiration: 0 for none, else at
// least 1ms and rounded up to whole milliseconds (PX's unit).
func redisTTL(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return 0
	}
	return (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
}

// Interface guard.
var _ Store = (*Redis)(nil)
