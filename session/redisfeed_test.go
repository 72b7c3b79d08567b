package session

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxauth/caddy-wxauth/internal/redistest"
)

// recorder is a Follower that keeps what it is told.
type recorder struct {
	mu       sync.Mutex
	payloads []string
	caught   time.Time
	gaps     int
	lost     int
}

func (r *recorder) Deliver(p []byte) {
	r.mu.Lock()
	r.payloads = append(r.payloads, string(p))
	r.mu.Unlock()
}
func (r *recorder) CaughtUp(at time.Time) {
	r.mu.Lock()
	r.caught = at
	r.mu.Unlock()
}
func (r *recorder) Lost(error) { r.mu.Lock(); r.lost++; r.mu.Unlock() }
func (r *recorder) Gap()       { r.mu.Lock(); r.gaps++; r.mu.Unlock() }

func (r *recorder) has(p string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.payloads {
		if x == p {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling for a fact
	}
}

func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func follow(t *testing.T, f Feed) *recorder {
	t.Helper()
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Follow(ctx, r); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Follow did not stop after its context ended")
		}
	})
	waitFor(t, 5*time.Second, "the first catch-up", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return !r.caught.IsZero()
	})
	return r
}

func TestRedisFeedDeliversAndSurvivesAWipe(t *testing.T) {
	url := redistest.Start(t)
	a := NewRedisFeed(redisClient(t, url), "feed", time.Hour, false)
	b := NewRedisFeed(redisClient(t, url), "feed", time.Hour, false)
	rb := follow(t, b)
	ctx := context.Background()
	var lat []time.Duration
	for i := range 20 {
		p := "event-" + strconv.Itoa(i)
		start := time.Now()
		if err := a.Publish(ctx, []byte(p)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 3*time.Second, p, func() bool { return rb.has(p) })
		lat = append(lat, time.Since(start))
	}
	for _, d := range lat {
		if d > time.Second {
			t.Fatalf("an event took %v to arrive (all: %v)", d, lat)
		}
	}
	rb.mu.Lock()
	got := strings.Join(rb.payloads, ",")
	rb.mu.Unlock()
	if !strings.HasPrefix(got, "event-0,event-1,") || strings.Count(got, ",") != 19 {
		t.Fatalf("delivered %s", got)
	}

	// A wipe (a restart without persistence) puts the stream behind the
	// follower: it reports a gap and follows the new stream.
	if err := redisClient(t, url).FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, []byte("after-wipe")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*redisFeedCheckEvery, "the event after the wipe", func() bool { return rb.has("after-wipe") })
	waitFor(t, 3*redisFeedCheckEvery, "a gap after the wipe", func() bool {
		rb.mu.Lock()
		defer rb.mu.Unlock()
		return rb.gaps > 0
	})
}

// At steady state a follower sends about one command a second.
func TestRedisFeedSteadyStateCommands(t *testing.T) {
	url := redistest.Start(t)
	c := redisClient(t, url)
	f := NewRedisFeed(redisClient(t, url), "feed", time.Hour, false)
	follow(t, f)
	calls := func() int {
		info, err := c.Info(context.Background(), "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		return redistest.CommandCalls(info, "xread", "xinfo|stream", "xinfo")
	}
	before, start := calls(), time.Now()
	time.Sleep(5 * time.Second) // a counting window: commands over a span of time are the point
	per := float64(calls()-before) / time.Since(start).Seconds()
	if per > 2 {
		t.Fatalf("%.2f feed commands a second at steady state, want <= 2", per)
	}
	t.Logf("%.2f feed commands a second at steady state", per)
}
