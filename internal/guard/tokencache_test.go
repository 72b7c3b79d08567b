package guard

import (
	"strconv"
	"testing"
)

func TestTokenCacheEvictsColdEntries(t *testing.T) {
	c := newTokenCache(cacheShards * 4) // 4 per shard
	ids := map[string]*Identity{}
	key := func(i int) string { return "tok-" + strconv.Itoa(i) }
	const n = cacheShards * 16
	for i := range n {
		id := &Identity{sid: key(i)}
		ids[key(i)] = id
		c.put(key(i), id)
		if i%2 == 0 {
			c.get(key(i)) // every other token stays in use
		}
		// Keep the hot ones hot while the cold ones come and go.
		for j := 0; j < i; j += 2 {
			c.get(key(j))
		}
	}
	if got := c.len(); got > cacheShards*4 {
		t.Fatalf("cache holds %d entries, bound %d", got, cacheShards*4)
	}
	if got := c.len(); got < cacheShards*4-cacheShards {
		t.Fatalf("cache shed too much: %d entries left", got)
	}
	hot := 0
	for i := 0; i < n; i++ {
		if id := c.get(key(i)); id != nil {
			if id != ids[key(i)] {
				t.Fatal("wrong identity under a key")
			}
			if i%2 == 0 {
				hot++
			}
		}
	}
	if hot*4 < c.len()*3 {
		t.Fatalf("only %d of %d kept entries are hot ones", hot, c.len())
	}
}

func TestTokenCacheDelete(t *testing.T) {
	c := newTokenCache(10)
	for i := range 100 {
		c.put(strconv.Itoa(i), &Identity{sid: strconv.Itoa(i % 3)})
	}
	for i := range 100 {
		id := c.get(strconv.Itoa(i))
		if got := c.del(strconv.Itoa(i)); got != id {
			t.Fatalf("del(%d) returned another identity", i)
		}
		if c.get(strconv.Itoa(i)) != nil {
			t.Fatal("deleted entry still cached")
		}
	}
	if c.len() != 0 {
		t.Fatalf("%d entries after deleting all", c.len())
	}
	// The ring stays consistent after deletes: fill it again.
	for i := range 200 {
		c.put(strconv.Itoa(i), &Identity{})
	}
	if c.len() > cacheShards {
		t.Fatalf("%d entries, bound %d", c.len(), cacheShards)
	}
}

// TestTokenCachePutAgainRacesGet is one token put again (two first uses of
// a new token at once) while other requests read it: run with -race, an
// entry written in place would be a data race with get, which reads it
// after the lock.
func TestTokenCachePutAgainRacesGet(t *testing.T) {
	c := newTokenCache(cacheShards)
	const key = "tok-again"
	c.put(key, &Identity{sid: "a"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			c.put(key, &Identity{sid: "b"})
		}
	}()
	for range 1000 {
		if id := c.get(key); id == nil {
			t.Fatal("token lost while put again")
		}
	}
	<-done
	if got := c.len(); got != 1 {
		t.Fatalf("cache holds %d entries after one token put again, want 1", got)
	}
}
