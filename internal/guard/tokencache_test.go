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

// TestTokenCacheFrontForgets checks that the lock-free front never hands
// back an entry that left its shard: deleted, evicted, or replaced by the
// token put again.
func TestTokenCacheFrontForgets(t *testing.T) {
	c := newTokenCache(cacheShards) // one token per shard
	a := "tok-a"
	_, ha := c.shard(a)
	var b string
	for i := 0; ; i++ { // a token of a's shard, so that it evicts a
		b = "tok-b" + strconv.Itoa(i)
		if _, hb := c.shard(b); hb%cacheShards == ha%cacheShards && hb != ha {
			break
		}
	}
	ida := &Identity{sid: "a"}
	c.put(a, ida)
	if c.get(a) != ida { // from the shard, which fills the front slot
		t.Fatal("a not cached")
	}
	if e := c.front[ha&c.mask].Load(); e == nil || e.id != ida {
		t.Fatal("a shard hit did not fill the front slot")
	}
	if c.get(a) != ida { // from the front
		t.Fatal("a not found through the front")
	}
	if old := c.put(a, &Identity{sid: "a2"}); old != ida {
		t.Fatal("put again did not return the old identity")
	}
	if id := c.get(a); id == nil || id.sid != "a2" {
		t.Fatalf("after put again: %v, want a2", id)
	}
	c.del(a)
	if id := c.get(a); id != nil {
		t.Fatalf("deleted token still found: %v", id)
	}
	c.put(a, ida)
	c.get(a)                      // in the front, and marked used
	c.put(b, &Identity{sid: "b"}) // CLOCK clears a's mark, comes round, evicts a
	if id := c.get(b); id == nil || id.sid != "b" {
		t.Fatalf("b not cached: %v", id)
	}
	if id := c.get(a); id != nil {
		t.Fatalf("evicted token still found through the front: %v", id)
	}
}
