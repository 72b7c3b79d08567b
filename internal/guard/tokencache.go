package guard

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// DefaultCacheSize bounds the verified-token cache of each wxauth handler.
const DefaultCacheSize = 100_000

// cacheShards spreads the cache's locks, so concurrent requests rarely wait
// on each other.
const cacheShards = 64

// hashedTail is how much of a token's end the cache hashes.
const hashedTail = 64

// frontShare sizes the cache's front: a slot per frontShare tokens of the
// bound (rounded up to a power of two), 128 KiB for DefaultCacheSize. Tokens
// in use at once are far fewer than the bound; two whose slots collide take
// turns in the slot and otherwise read their shard.
const frontShare = 8

// tokenCache maps verified token strings to their identities. A token is
// hashed once per lookup: the hash picks the shard and is the shard map's
// key, and the entry keeps the whole token, which a lookup compares. Only
// the token's last hashedTail bytes are hashed: a token ends in its
// signature (43 characters for HS256, 86 for EdDSA), which differs from
// every other token's, and hashing the whole of a 350-byte token was a
// fifth of a cache hit. Two tokens whose hashes collide (the same last 64
// bytes, or 64-bit hashes with a seed random per process) share one slot and
// evict each other: a miss, never a wrong answer. It is bounded: when a shard is full, CLOCK (second chance) evicts one entry not
// used since the hand last passed it, so a full cache sheds cold tokens one
// at a time and hot ones stay.
//
// In front of the shards, a lookup reads front: one slot per hash (its low
// bits), holding the entry last found there, read with one atomic load and
// no lock. A hit in a shard puts its entry in the slot, under the shard's
// read lock; whatever takes an entry out of a shard clears its slot, under
// the shard's write lock, so the slot never outlives the entry's time in
// the shard (a lookup that loaded it just before is the same race as one
// that found it in the shard just before). front has a power of two of at
// least cacheShards slots, so every entry of a slot is of one shard, and
// that shard's lock orders the slot's stores.
type tokenCache struct {
	seed   maphash.Seed
	front  []atomic.Pointer[cacheEntry]
	mask   uint64 // len(front) - 1
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu   sync.RWMutex
	m    map[uint64]*cacheEntry // by the key's hash
	ring []*cacheEntry
	hand int
	max  int
}

type cacheEntry struct {
	// key, hash and id are set before the entry is put in the map and never
	// change: get reads them without the lock.
	key  string
	hash uint64
	id   *Identity
	used atomic.Bool
	pos  int // index in ring; guarded by the shard lock
}

// newTokenCache returns a cache of about size entries (at least one per shard).
func newTokenCache(size int) *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed()}
	n := cacheShards
	for n < size/frontShare {
		n *= 2
	}
	c.front, c.mask = make([]atomic.Pointer[cacheEntry], n), uint64(n-1)
	per := max(size/cacheShards, 1)
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]*cacheEntry)
		c.shards[i].max = per
	}
	return c
}

// shard returns key's shard and hash.
func (c *tokenCache) shard(key string) (*cacheShard, uint64) {
	tail := key
	if len(tail) > hashedTail {
		tail = tail[len(tail)-hashedTail:]
	}
	h := maphash.String(c.seed, tail)
	return &c.shards[h%cacheShards], h
}

// get returns the identity cached for key, or nil.
func (c *tokenCache) get(key string) *Identity {
	s, h := c.shard(key)
	slot := &c.front[h&c.mask]
	e := slot.Load()
	if e == nil || e.hash != h {
		s.mu.RLock()
		if e = s.m[h]; e != nil {
			slot.Store(e)
		}
		s.mu.RUnlock()
	}
	if e == nil || e.key != key {
		return nil
	}
	if !e.used.Load() { // a load first: hot entries then cost no cache-line write
		e.used.Store(true)
	}
	return e.id
}

// put caches id under key and returns the identity it evicted, if any.
func (c *tokenCache) put(key string, id *Identity) (evicted *Identity) {
	s, h := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &cacheEntry{key: key, hash: h, id: id}
	if old := s.m[h]; old != nil {
		// The same token, or one whose hash collides: it is evicted. A new
		// entry takes its place rather than the old one being written to:
		// get reads an entry's key and identity after the read lock, so
		// they never change once the entry is in the map.
		e.pos = old.pos
		s.ring[e.pos] = e
		s.m[h] = e
		c.unfront(old)
		return old.id
	}
	if len(s.ring) < s.max {
		e.pos = len(s.ring)
		s.ring = append(s.ring, e)
		s.m[h] = e
		return nil
	}
	// Second chance: clear used bits until an unused entry comes up.
	for {
		v := s.ring[s.hand]
		if v.used.Load() && !v.id.dead.Load() {
			v.used.Store(false)
			s.hand = (s.hand + 1) % len(s.ring)
			continue
		}
		delete(s.m, v.hash)
		c.unfront(v)
		e.pos = s.hand
		s.ring[s.hand] = e
		s.m[h] = e
		s.hand = (s.hand + 1) % len(s.ring)
		return v.id
	}
}

// del removes key and returns the identity it held, or nil.
func (c *tokenCache) del(key string) *Identity {
	s, h := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[h]
	if e == nil || e.key != key {
		return nil
	}
	delete(s.m, h)
	c.unfront(e)
	last := len(s.ring) - 1
	s.ring[e.pos] = s.ring[last]
	s.ring[e.pos].pos = e.pos
	s.ring[last] = nil
	s.ring = s.ring[:last]
	if s.hand >= len(s.ring) {
		s.hand = 0
	}
	return e.id
}

// unfront clears e's front slot if it holds e; the caller holds e's shard's
// write lock.
func (c *tokenCache) unfront(e *cacheEntry) {
	c.front[e.hash&c.mask].CompareAndSwap(e, nil)
}

// len returns the number of cached tokens.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
