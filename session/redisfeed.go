package session

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxauth/caddy-wxauth/internal/clock"
)

// redisFeedBlock is how long one XREAD waits for new entries; at steady
// state a follower so sends one command a second.
const redisFeedBlock = time.Second

// redisFeedCheckEvery is how often a follower checks that the stream was not
// wiped under it (a restart without persistence): its position would then
// be ahead of every new entry, and XREAD would never return them.
const redisFeedCheckEvery = 5 * time.Second

// RedisFeed is a Feed on one Redis Stream: XADD to publish, XREAD BLOCK from
// the last id seen to follow, so nothing between two reads is missed. The
// stream is trimmed on each publish to the retention.
type RedisFeed struct {
	client    redis.UniversalClient
	key       string
	retention time.Duration
	// wait, when true, makes Publish wait for one replica (WAIT 1) where
	// the stream's master has replicas, so a failover does not lose an
	// event the caller was told is stored.
	wait bool
	now  func() time.Time

	replicas        atomic.Int64 // replicas of the stream's master, as last seen
	replicasChecked atomic.Int64 // unix nanos of that look
}

// replicaCheckEvery is how often Publish looks again how many replicas the
// stream's master has.
const replicaCheckEvery = 30 * time.Second

// NewRedisFeed returns a feed on the stream key. Entries older than
// retention are trimmed; set it to the longest a token can live. With
// waitReplica, Publish returns only after a replica has the entry (or a
// short wait passed): use it where replicas exist (Sentinel, Cluster).
func NewRedisFeed(client redis.UniversalClient, key string, retention time.Duration, waitReplica bool) *RedisFeed {
	return &RedisFeed{client: client, key: key, retention: retention, wait: waitReplica, now: time.Now}
}

// Publish implements Feed.
func (f *RedisFeed) Publish(ctx context.Context, payload []byte) error {
	args := &redis.XAddArgs{
		Stream: f.key,
		MinID:  strconv.FormatInt(f.now().Add(-f.retention).UnixMilli(), 10),
		Approx: true,
		Values: []any{"p", payload},
	}
	var err error
	if master := f.master(ctx); master != nil {
		// WAIT counts the writes of its own connection: one pipeline on
		// the stream's master sends both on one.
		_, err = master.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.XAdd(ctx, args)
			p.Do(ctx, "WAIT", 1, 200)
			return nil
		})
	} else {
		err = f.client.XAdd(ctx, args).Err()
	}
	if err != nil {
		return fmt.Errorf("session: redis feed publish: %w", err)
	}
	return nil
}

// master returns the client of the stream's master when Publish must wait
// for a replica, nil when it need not (waiting off, or no replica).
func (f *RedisFeed) master(ctx context.Context) *redis.Client {
	if !f.wait {
		return nil
	}
	var m *redis.Client
	switch c := f.client.(type) {
	case *redis.Client:
		m = c
	case *redis.ClusterClient:
		var err error
		if m, err = c.MasterForKey(ctx, f.key); err != nil {
			return nil
		}
	default:
		return nil
	}
	if now := f.now().UnixNano(); now-f.replicasChecked.Load() > int64(replicaCheckEvery) {
		f.replicasChecked.Store(now)
		if info, err := m.Info(ctx, "replication").Result(); err == nil {
			f.replicas.Store(connectedReplicas(info))
		}
	}
	if f.replicas.Load() == 0 {
		return nil
	}
	return m
}

// connectedReplicas reads connected_slaves from INFO replication.
func connectedReplicas(info string) int64 {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// Follow implements Feed.
func (f *RedisFeed) Follow(ctx context.Context, fl Follower) {
	last := ""
	var added int64 // entries ever added: as last seen, plus those delivered since
	backoff := 50 * time.Millisecond
	var checked time.Time
	for ctx.Err() == nil {
		if last == "" || time.Since(checked) >= redisFeedCheckEvery {
			top, n, err := f.head(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				fl.Lost(err)
				clock.Sleep(ctx, backoff)
				backoff = min(backoff*2, time.Second)
				continue
			}
			switch {
			case last == "":
				last = top // start from now
			case idLess(top, last) || n < added:
				// Wiped (the stream is behind this follower, or counts fewer
				// entries than it did): what it held is gone, and all the
				// new stream holds came after. It is read from its start: a
				// new entry can carry an id at or below the last one read
				// (the same millisecond), which reading on from there would
				// miss; one read twice is applied twice, which changes
				// nothing.
				fl.Gap()
				last = "0-0"
			}
			added = n
			checked = time.Now()
		}
		res, err := f.client.XRead(ctx, &redis.XReadArgs{
			Streams: []string{f.key, last},
			Block:   redisFeedBlock,
			Count:   512,
		}).Result()
		switch {
		case errors.Is(err, redis.Nil):
			// XREAD answers as soon as an entry is added, so an empty
			// answer means none was added while it waited.
			fl.CaughtUp(f.now())
			backoff = 50 * time.Millisecond
			continue
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			fl.Lost(err)
			clock.Sleep(ctx, backoff)
			backoff = min(backoff*2, time.Second)
			checked = time.Time{} // look for a wipe once back
			continue
		}
		backoff = 50 * time.Millisecond
		n := 0
		for _, s := range res {
			for _, m := range s.Messages {
				last = m.ID
				n++
				added++
				if p, ok := m.Values["p"].(string); ok {
					fl.Deliver([]byte(p))
				} else {
					fl.Deliver(nil) // the follower ignores what it cannot read
				}
			}
		}
		if n < 512 {
			fl.CaughtUp(f.now())
		}
	}
}

// head returns the id of the stream's newest entry ever added and how many
// entries were ever added: "0-0" and 0 when the stream does not exist.
func (f *RedisFeed) head(ctx context.Context) (string, int64, error) {
	info, err := f.client.XInfoStream(ctx, f.key).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return "0-0", 0, nil
		}
		return "", 0, fmt.Errorf("session: redis feed: %w", err)
	}
	return info.LastGeneratedID, info.EntriesAdded, nil
}

// idLess compares two stream ids ("ms-seq").
func idLess(a, b string) bool {
	am, as := splitID(a)
	bm, bs := splitID(b)
	if am != bm {
		return am < bm
	}
	return as < bs
}

func splitID(id string) (uint64, uint64) {
	ms, seq, _ := strings.Cut(id, "-")
	m, _ := strconv.ParseUint(ms, 10, 64)
	s, _ := strconv.ParseUint(seq, 10, 64)
	return m, s
}

// Feed returns a feed on this store's server under key name, named like
// every key of the store (prefixed, its last element the hash tag),
// trimmed to retention.
func (r *Redis) Feed(name string, retention time.Duration) *RedisFeed {
	return NewRedisFeed(r.client, r.key(name), retention, true)
}

// Interface guard.
var _ Feed = (*RedisFeed)(nil)
