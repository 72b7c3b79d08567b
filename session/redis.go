package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
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
// connected to the same server (or cluster, or sentinel-watched master)
// and database. It never reads from replicas.
//
// Keys work on Redis Cluster: the last element of every key and lock name,
// up to its first '.', is the key's hash tag. The store key
// "wxauth/<app>/sessions/<sid>" is the Redis key
// "<prefix>wxauth/<app>/sessions/{<sid>}", and a lock on that name is
// "<prefix>locks/wxauth/<app>/sessions/{<sid>}", in the same slot. So keys
// of one session or one user hash together when their names end in the
// session id or the openid ("claims/<openid>", not "<openid>/claims"), and
// a lock hashes with the key it protects when it is named after it (the
// key itself, or the key plus ".lock"); a script may then touch both.
// Other elements of a name may not contain '{' or '}'.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// NewRedis checks cfg and returns a Redis store. It does not connect; use
// Ping to check that the servers answer.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	o, err := cfg.options()
	if err != nil {
		return nil, err
	}
	return &Redis{client: o.client(), prefix: cfg.KeyPrefix}, nil
}

// key returns the Redis key of a store key, with its hash tag.
func (r *Redis) key(name string) string {
	dir, last := "", name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		dir, last = name[:i+1], name[i+1:]
	}
	tag, rest := last, ""
	if i := strings.IndexByte(last, '.'); i > 0 {
		tag, rest = last[:i], last[i:]
	}
	return r.prefix + dir + "{" + tag + "}" + rest
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
	b, err := r.client.Get(ctx, r.key(key)).Bytes()
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
	if err := r.client.Set(ctx, r.key(key), value, redisTTL(ttl)).Err(); err != nil {
		return fmt.Errorf("session: redis set: %w", err)
	}
	return nil
}

// SetNX implements Store with SET NX PX.
func (r *Redis) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	ok, err := r.client.SetNX(ctx, r.key(key), value, redisTTL(ttl)).Result()
	if err != nil {
		return false, fmt.Errorf("session: redis setnx: %w", err)
	}
	return ok, nil
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, key string) error {
	if err := r.client.Del(ctx, r.key(key)).Err(); err != nil {
		return fmt.Errorf("session: redis del: %w", err)
	}
	return nil
}

// Lock implements Store with SET NX PX of a random token, retried until it
// succeeds or ctx ends. The lock expires after 30s even if never released.
func (r *Redis) Lock(ctx context.Context, name string) (func(), error) {
	key := r.key(redisLockSpace + name)
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
