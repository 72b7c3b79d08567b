package session

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxauth/caddy-wxauth/internal/redistest"
)

// TestRedisStoreFeed runs the store's change feed on a real cluster and
// behind a sentinel: the stream is keyed like the store's keys, and an
// event reaches a follower on another client.
func TestRedisStoreFeed(t *testing.T) {
	nodes := redistest.StartCluster(t, redistest.ClusterConfig{})
	sent := redistest.StartSentinel(t, redistest.SentinelConfig{})
	for _, tt := range []struct {
		name string
		cfg  RedisConfig
		raw  func() redis.UniversalClient
	}{
		{"cluster", RedisConfig{Mode: RedisCluster, Addrs: nodes, KeyPrefix: "wx:"},
			func() redis.UniversalClient { return redis.NewClusterClient(&redis.ClusterOptions{Addrs: nodes}) }},
		{"sentinel", RedisConfig{Mode: RedisSentinel, MasterName: sent.MasterName, Addrs: []string{sent.Addr}, KeyPrefix: "wx:"},
			func() redis.UniversalClient { return redis.NewClient(&redis.Options{Addr: sent.Master(t)}) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			publisher, err := NewRedis(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer publisher.Close()
			follower, err := NewRedis(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer follower.Close()

			rec := follow(t, follower.Feed("wxauth/wxapp/events", time.Hour))
			waitFor(t, 10*time.Second, "the follower to catch up", func() bool {
				rec.mu.Lock()
				defer rec.mu.Unlock()
				return !rec.caught.IsZero()
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := publisher.Feed("wxauth/wxapp/events", time.Hour).Publish(ctx, []byte("logout s1")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "the event", func() bool { return rec.has("logout s1") })

			raw := tt.raw()
			defer raw.Close()
			if n, err := raw.XLen(ctx, "wx:wxauth/wxapp/{events}").Result(); err != nil || n != 1 {
				t.Fatalf("XLEN of the tagged stream = %d, %v", n, err)
			}
		})
	}
}
