package guard

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wxauth/caddy-wxauth/internal/clock"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/token"
)

// The guard's cache benchmarks: Guard.Check on fakes (no Caddy, no store),
// so the figures are the token cache and the guard's own work.
//
// Tokens are "tok-<sid>.<padding>.<sid>", as long as a real token of the
// default config, so the cache's keys weigh what real ones do, and like one
// they end in a part of their own (a real token's signature), which is what
// the cache hashes. Each token is its own session and its own user (one
// openid each), the heaviest case. The
// fake verify and lookup make fresh strings as decoding would, and cost
// about a microsecond together, far less than a real signature check and a
// store round trip: the miss figures are the guard's part of a miss.

// benchSidLen is the length of a real session id (32 random bytes, base64).
const benchSidLen = 43

// benchCache is a guard filled with cached tokens.
type benchCache struct {
	g *Guard
	// tokens are the working set, copies of the strings the cache was
	// filled with: like a request's token, a lookup's bytes are not the
	// cached key's (Go compares equal string pointers without reading them).
	tokens []string
	// misses counts verify calls: tokens that were not in the cache.
	misses atomic.Int64
	// bytesPerToken is the live heap the fill added, per token filled in
	// (exact only when nothing was evicted while filling).
	bytesPerToken float64
	// cached is how many tokens the cache held after the fill.
	cached int
}

// realTokenLen is the length of a token issued by the default config.
func realTokenLen(b *testing.B) int {
	ring, err := token.NewKeyring(token.Key{ID: "k1", Alg: token.HS256, Secret: make([]byte, 32)})
	if err != nil {
		b.Fatal(err)
	}
	tk, err := token.New(token.Config{Audience: "wx0123456789abcdef"}, ring)
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := tk.Issue("oAbCdEfGhIjKlMnOpQrStUvWxYz0", "", session.NewID(), nil, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return len(tok)
}

// newBenchCache returns a guard with a cache bound of size and a working
// set of n tokens, of which the first min(n, size) are checked once, so
// cached (each shard holds size/64: with size under 2n, a shard that gets
// more than its share evicts some while others have room).
func newBenchCache(b *testing.B, size, n int) *benchCache {
	b.Helper()
	c := &benchCache{tokens: make([]string, n)}
	start := time.Now()
	role := map[string]any{"role": "member"}
	openidOf := func(sid string) string { return "o" + sid[benchSidLen-27:] }
	ended := NewEnded(time.Now)
	// Caught up with the feed for good: the production Redis path, where a
	// cached token needs no lookup.
	health := &fakeFeedState{}
	health.caught.Store(math.MaxInt64)
	c.g = New(Config{
		Ctx: b.Context(),
		Verify: func(tok string) (*token.Claims, time.Duration, error) {
			c.misses.Add(1)
			if !strings.HasPrefix(tok, "tok-") || len(tok) < 4+benchSidLen {
				return nil, 0, fmt.Errorf("token: malformed")
			}
			sid := strings.Clone(tok[4 : 4+benchSidLen])
			cl := &token.Claims{SessionID: sid}
			cl.Subject = openidOf(sid)
			cl.IssuedAt = jwt.NewNumericDate(start.Add(-time.Minute))
			cl.ExpiresAt = jwt.NewNumericDate(start.Add(time.Hour))
			return cl, 0, nil
		},
		Lookup: func(_ context.Context, sid string) (*session.Session, error) {
			return &session.Session{ID: sid, OpenID: openidOf(sid), Created: start.Add(-time.Minute), Claims: role}, nil
		},
		Now:       time.Now,
		Fresh:     FeedFreshness{Feed: health, Bound: time.Second},
		Ended:     ended,
		Sources:   []TokenSource{{From: "header", Name: "Authorization", Scheme: "Bearer"}},
		CacheSize: size,
	})

	pad := max(realTokenLen(b)-4-2*benchSidLen-2, 0)
	filled := min(n, size)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	for i := range c.tokens {
		// Made in the measured span for the cached ones: the cache keeps the
		// request's token string alive, so its bytes are part of a cached token.
		sid := fmt.Sprintf("%0*d", benchSidLen, i)
		c.tokens[i] = "tok-" + sid + "." + strings.Repeat("x", pad) + "." + sid
		if i < filled {
			if _, err := c.g.Check(context.Background(), c.tokens[i]); err != nil {
				b.Fatalf("filling the cache: %s", err.Message)
			}
		}
		if i == filled-1 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			c.bytesPerToken = float64(int64(ms.HeapAlloc)-int64(before)) / float64(filled)
		}
	}
	for i := range c.tokens {
		c.tokens[i] = strings.Clone(c.tokens[i])
	}
	c.cached = c.g.cache.len()
	if size >= 2*n && c.cached != n {
		// Room to spare in every shard: nothing may have been evicted.
		b.Fatalf("cached %d tokens, want %d", c.cached, n)
	}
	c.misses.Store(0)
	return c
}

// BenchmarkCacheHit is Guard.Check on a cached token, picked at random
// among 1k, 100k and 1M cached tokens (the cache bound set to twice the
// count, so that no shard evicts any),
// on one goroutine and on GOMAXPROCS (b.RunParallel). heap-B/token is the
// live heap each cached token adds: its cache entry, identity, user and
// view, and the token string the cache keeps.
func BenchmarkCacheHit(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		c := newBenchCache(b, 2*n, n)
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, uint64(n)))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.g.Check(ctx, c.tokens[rng.IntN(n)]); err != nil {
					b.Fatal(err.Message)
				}
			}
			b.ReportMetric(c.bytesPerToken, "heap-B/token")
		})
		// What the loop costs without the check: picking a token and
		// reading its bytes once, cold (a request's token is in the CPU's
		// cache already). Subtract it from the figure above.
		b.Run(fmt.Sprintf("tokens=%d/fetch-only", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, uint64(n)))
			seed := maphash.MakeSeed()
			var s uint64
			for b.Loop() {
				s += maphash.String(seed, c.tokens[rng.IntN(n)])
			}
			benchNanos = int64(s)
		})
		b.Run(fmt.Sprintf("tokens=%d/parallel", n), func(b *testing.B) {
			var seed atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(seed.Add(1), uint64(n)))
				ctx := context.Background()
				for pb.Next() {
					if _, err := c.g.Check(ctx, c.tokens[rng.IntN(n)]); err != nil {
						b.Error(err.Message)
						return
					}
				}
			})
			b.ReportMetric(c.bytesPerToken, "heap-B/token")
		})
		c.g.Close()
		c = nil
		runtime.GC()
	}
}

// BenchmarkCacheOverBound is Guard.Check with a working set of twice the
// cache bound (DefaultCacheSize), so misses verify, look up and evict a cold
// entry:
//
//	scan     every token in turn: each check misses (CLOCK, like LRU, keeps
//	         nothing of a loop larger than itself): the miss path's cost
//	uniform  tokens at random: about half the checks miss
//	zipf     a few hot users and a long tail (Zipf, s = 1.1): hot tokens stay
//
// miss-ratio is the share of checks that missed the cache; filled-share is
// how much of the bound the cache held after DefaultCacheSize distinct
// tokens were checked once (the shards fill unevenly).
func BenchmarkCacheOverBound(b *testing.B) {
	const size = DefaultCacheSize
	n := 2 * size
	c := newBenchCache(b, size, n)
	run := func(b *testing.B, next func() int) {
		ctx := context.Background()
		c.misses.Store(0)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := c.g.Check(ctx, c.tokens[next()]); err != nil {
				b.Fatal(err.Message)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(c.misses.Load())/float64(b.N), "miss-ratio")
		b.ReportMetric(float64(c.cached)/size, "filled-share")
		if got := c.g.cache.len(); got > size {
			b.Fatalf("cache holds %d tokens, bound %d", got, size)
		}
	}
	// Each pattern is warmed once, on its first run, so the figures are
	// its steady state.
	warm := func(b *testing.B, done *bool, next func() int) {
		if *done {
			return
		}
		*done = true
		for range 2 * n {
			if _, err := c.g.Check(context.Background(), c.tokens[next()]); err != nil {
				b.Fatal(err.Message)
			}
		}
	}
	defer c.g.Close()
	// State kept across the framework's runs of each sub-benchmark.
	i, scanned := 0, false
	scan := func() int { i = (i + 1) % n; return i }
	rng, uniformed := rand.New(rand.NewPCG(3, 4)), false
	uniform := func() int { return rng.IntN(n) }
	z, zipfed := rand.NewZipf(rand.New(rand.NewPCG(5, 6)), 1.1, 1, uint64(n-1)), false
	zipf := func() int { return int(z.Uint64()) }
	b.Run("scan", func(b *testing.B) {
		warm(b, &scanned, scan)
		run(b, scan)
	})
	b.Run("uniform", func(b *testing.B) {
		warm(b, &uniformed, uniform)
		run(b, uniform)
	})
	b.Run("zipf", func(b *testing.B) {
		warm(b, &zipfed, zipf)
		run(b, zipf)
	})
	b.Run("uniform/parallel", func(b *testing.B) {
		var seed atomic.Uint64
		c.misses.Store(0)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(seed.Add(1), 7))
			ctx := context.Background()
			for pb.Next() {
				if _, err := c.g.Check(ctx, c.tokens[rng.IntN(n)]); err != nil {
					b.Error(err.Message)
					return
				}
			}
		})
		b.ReportMetric(float64(c.misses.Load())/float64(b.N), "miss-ratio")
	})
}

// BenchmarkCacheInvalidate is what one logout (a change event naming a
// session) costs a guard holding 1k, 100k and 1M cached tokens: it finds
// the session's tokens through its user's index. The session named is not
// cached, so the cache stays the same from one run to the next.
func BenchmarkCacheInvalidate(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		c := newBenchCache(b, 2*n, n)
		id := c.g.cache.get(c.tokens[n/2])
		if id == nil {
			b.Fatal("a filled token is not cached")
		}
		b.Run(fmt.Sprintf("tokens=%d/by-user", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.g.Invalidate(id.openid, "not-a-cached-session")
			}
		})
		c.g.Close()
		c = nil
		runtime.GC()
	}
}

// benchNanos is where the clock benchmarks leave their reads, so the
// compiler keeps them.
var benchNanos int64

// BenchmarkClock is the price of reading the time on the hot path:
// time.Now against an atomic load of a value a ticker keeps (a coarse
// clock), alone and on every core at once, and tickClock, what the guard
// reads on every cached check (an atomic load once its ticker runs).
func BenchmarkClock(b *testing.B) {
	var coarse atomic.Int64
	coarse.Store(time.Now().UnixNano())
	b.Run("time.Now", func(b *testing.B) {
		var s int64
		for b.Loop() {
			s += time.Now().UnixNano()
		}
		benchNanos = s
	})
	b.Run("atomic-load", func(b *testing.B) {
		var s int64
		for b.Loop() {
			s += coarse.Load()
		}
		benchNanos = s
	})
	b.Run("tickClock", func(b *testing.B) {
		var c clock.Ticking
		var s int64
		for b.Loop() {
			s += c.NanosNow()
		}
		benchNanos = s
	})
	b.Run("time.Now/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			var s int64
			for pb.Next() {
				s += time.Now().UnixNano()
			}
			atomic.AddInt64(&benchNanos, s)
		})
	})
	b.Run("atomic-load/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			var s int64
			for pb.Next() {
				s += coarse.Load()
			}
			atomic.AddInt64(&benchNanos, s)
		})
	})
}
