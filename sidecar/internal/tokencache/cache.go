// Package tokencache is the bounded cache of verified tokens. It is keyed on
// the account and the whole token, so a token is only ever trusted in the
// account whose issuer verified it. Entries expire with their token and are
// evicted by sampling when a shard is full, so both a hit and a put cost
// O(1) and a lookup never allocates.
package tokencache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	cores "github.com/wardenauthz/warden/sidecar/internal/shard"
)

const shardCount = 16

// evictSample is how many entries a full shard looks at to find an expired
// one before it evicts an arbitrary one.
const evictSample = 8

type key struct {
	account, token string
}

type item[V any] struct {
	value   *V
	expires int64 // unix nanoseconds
}

type shard[V any] struct {
	mu readLocks
	m  map[key]item[V]
}

// readLocks is a reader-writer lock whose readers take one of cores.N
// locks, chosen by the caller's goroutine (cores.Index), and whose writers
// take them all. A read lock writes its lock's reader count: with one
// lock, every core reading the same cache shard (the same hot token)
// would write one cache line, and reads would stop scaling past a few
// cores. Writes, which are rare (a token verified, evicted or dropped),
// pay cores.N lock operations instead of one.
type readLocks struct {
	l [cores.N]struct {
		sync.RWMutex
		_ [64 - 24]byte // one lock a cache line
	}
}

// RLock takes a read lock and returns the index to release it with.
func (r *readLocks) RLock() int {
	i := cores.Index()
	r.l[i].RLock()
	return i
}

// RUnlock releases the read lock RLock returned i for.
func (r *readLocks) RUnlock(i int) { r.l[i].RUnlock() }

// Lock takes every lock, in order.
func (r *readLocks) Lock() {
	for i := range r.l {
		r.l[i].Lock()
	}
}

// Unlock releases every lock.
func (r *readLocks) Unlock() {
	for i := range r.l {
		r.l[i].Unlock()
	}
}

// counters count hits and misses on the caller's cores.Index, so that
// cores counting at once rarely share a cache line.
type counters struct {
	s [cores.N]struct {
		hits, misses atomic.Uint64
		_            [64 - 16]byte
	}
}

// Cache maps (account, token) to *V. The zero value is not usable; call New.
type Cache[V any] struct {
	seed     maphash.Seed
	perShard int
	shards   [shardCount]shard[V]

	counts    counters
	evictions atomic.Uint64
}

// New returns a cache holding at most size entries (rounded up to a multiple
// of the shard count). A size below 1 gives a cache that holds nothing.
func New[V any](size int) *Cache[V] {
	c := &Cache[V]{seed: maphash.MakeSeed()}
	if size > 0 {
		c.perShard = (size + shardCount - 1) / shardCount
	}
	for i := range c.shards {
		c.shards[i].m = make(map[key]item[V])
	}
	return c
}

func (c *Cache[V]) shard(token string) *shard[V] {
	return &c.shards[maphash.String(c.seed, token)%shardCount]
}

// Get returns the entry of a token in an account, unless it is absent or
// expired at now.
func (c *Cache[V]) Get(account, token string, now time.Time) (*V, bool) {
	return c.GetOn(cores.Index(), account, token, now)
}

// GetOn is Get for a caller that knows its core's index (cores.Index):
// a check takes it once for every shared thing it counts.
func (c *Cache[V]) GetOn(i int, account, token string, now time.Time) (*V, bool) {
	s := c.shard(token)
	s.mu.l[i].RLock()
	it, ok := s.m[key{account, token}]
	s.mu.l[i].RUnlock()
	if !ok || now.UnixNano() >= it.expires {
		c.counts.s[i].misses.Add(1)
		return nil, false
	}
	c.counts.s[i].hits.Add(1)
	return it.value, true
}

// Put stores the entry of a token in an account until expires. now is the
// caller's clock, used to prefer expired entries when evicting.
func (c *Cache[V]) Put(account, token string, v *V, expires, now time.Time) {
	if c.perShard == 0 {
		return
	}
	s := c.shard(token)
	k := key{account, token}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; !ok && len(s.m) >= c.perShard {
		c.evictLocked(s, now.UnixNano())
	}
	s.m[k] = item[V]{value: v, expires: expires.UnixNano()}
}

// evictLocked removes one entry: the first expired one among a sample, else
// the first sampled. Map iteration starts at a random place, so the victim
// is random.
func (c *Cache[V]) evictLocked(s *shard[V], now int64) {
	var victim key
	n := 0
	for k, it := range s.m {
		if n == 0 {
			victim = k
		}
		if it.expires <= now {
			victim = k
			break
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(s.m, victim)
	c.evictions.Add(1)
}

// Delete removes the entry of a token in an account.
func (c *Cache[V]) Delete(account, token string) {
	s := c.shard(token)
	s.mu.Lock()
	delete(s.m, key{account, token})
	s.mu.Unlock()
}

// Len returns the number of entries, expired ones included.
func (c *Cache[V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		i := s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock(i)
	}
	return n
}

// Stats are the cache's counters since it was made.
type Stats struct {
	Hits, Misses, Evictions uint64
}

// Stats returns the cache's counters.
func (c *Cache[V]) Stats() Stats {
	st := Stats{Evictions: c.evictions.Load()}
	for i := range c.counts.s {
		st.Hits += c.counts.s[i].hits.Load()
		st.Misses += c.counts.s[i].misses.Load()
	}
	return st
}
