// Package tokencache is the bounded cache of verified tokens. It is keyed on
// the account and the whole token, so a token is only ever trusted in the
// account whose issuer verified it. Entries expire with their token and are
// evicted by sampling when a shard is full, so both a hit and a put cost
// O(1) and a lookup never allocates.
//
// The collector barely sees it. A shard indexes its entries by a 64-bit
// hash of the key in a map without pointers, keeps every key's bytes
// (account, a zero byte, token) in one byte arena, and its entries in one
// slice of slots whose only pointer is the value. A cache of a hundred
// thousand tokens is then three objects per shard and the values, where a
// map keyed on the strings was a hundred thousand token strings the
// collector had to mark. A lookup compares the whole key, so two keys with
// one hash never answer for each other: the later simply replaces the
// earlier. The cache is bounded by entries and by the bytes of its keys.
package tokencache

import (
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	cores "github.com/wardenauthz/warden/sidecar/internal/shard"
)

const shardCount = 16

// evictSample is how many entries a full shard looks at to find an expired
// one before it evicts an arbitrary one.
const evictSample = 8

// BytesPerEntry is the room for key bytes a cache of n entries gets by
// default: n × BytesPerEntry. Tokens are usually under a kilobyte; a flood
// of 16 KiB tokens fills the bytes before the entries.
const BytesPerEntry = 2 << 10

// slot is one cached entry: where its key lies in the arena, when it
// expires, and the value.
type slot[V any] struct {
	hash    uint64
	expires int64  // unix nanoseconds
	off     uint32 // of the key in the arena
	klen    uint32 // the key's length: account, 0, token
	alen    uint32 // the account's length
	value   *V     // nil for a free slot
}

type shard[V any] struct {
	mu    readLocks
	index map[uint64]int32 // hash to slot
	slots []slot[V]
	free  []int32 // free slots
	arena []byte
	live  int // bytes of the arena that entries' keys hold
}

// readLocks is a reader-writer lock whose readers take one of cores.N
// locks, chosen by the caller's core (cores.Index), and whose writers
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
	seed, accSeed maphash.Seed
	perShard      int
	perShardBytes int
	shards        [shardCount]shard[V]

	counts    counters
	evictions atomic.Uint64
}

// New returns a cache holding at most size entries (rounded up to a
// multiple of the shard count) and size × BytesPerEntry bytes of keys. A
// size below 1 gives a cache that holds nothing.
func New[V any](size int) *Cache[V] {
	return NewBounded[V](size, int64(max(size, 0))*BytesPerEntry)
}

// NewBounded returns a cache holding at most size entries and maxBytes
// bytes of keys (accounts and tokens).
func NewBounded[V any](size int, maxBytes int64) *Cache[V] {
	c := &Cache[V]{seed: maphash.MakeSeed(), accSeed: maphash.MakeSeed()}
	if size > 0 {
		c.perShard = (size + shardCount - 1) / shardCount
		c.perShardBytes = int(min(max(maxBytes/shardCount, 1), 1<<31))
	}
	for i := range c.shards {
		c.shards[i].index = make(map[uint64]int32)
	}
	return c
}

// hash is the key's hash: the token's, mixed with the account's.
func (c *Cache[V]) hash(account, token string) uint64 {
	return maphash.String(c.seed, token) ^ maphash.String(c.accSeed, account)*0x9E3779B97F4A7C15
}

// matches reports whether slot sl holds the key (account, token).
func (s *shard[V]) matches(sl *slot[V], account, token string) bool {
	k := s.arena[sl.off : sl.off+sl.klen]
	return int(sl.alen) == len(account) && len(k) == len(account)+1+len(token) &&
		string(k[:sl.alen]) == account && string(k[sl.alen+1:]) == token
}

// Get returns the entry of a token in an account, unless it is absent or
// expired at now.
func (c *Cache[V]) Get(account, token string, now time.Time) (*V, bool) {
	return c.GetOn(cores.Index(), account, token, now)
}

// GetOn is Get for a caller that knows its core's index (cores.Index):
// a check takes it once for every shared thing it counts.
func (c *Cache[V]) GetOn(i int, account, token string, now time.Time) (*V, bool) {
	h := c.hash(account, token)
	s := &c.shards[h%shardCount]
	var v *V
	s.mu.l[i].RLock()
	if j, ok := s.index[h]; ok {
		if sl := &s.slots[j]; now.UnixNano() < sl.expires && s.matches(sl, account, token) {
			v = sl.value
		}
	}
	s.mu.l[i].RUnlock()
	if v == nil {
		c.counts.s[i].misses.Add(1)
		return nil, false
	}
	c.counts.s[i].hits.Add(1)
	return v, true
}

// Put stores the entry of a token in an account until expires. now is the
// caller's clock, used to prefer expired entries when evicting. A token
// too large for the cache's bytes is not stored.
func (c *Cache[V]) Put(account, token string, v *V, expires, now time.Time) {
	klen := len(account) + 1 + len(token)
	if c.perShard == 0 || v == nil || klen > c.perShardBytes {
		return
	}
	h := c.hash(account, token)
	s := &c.shards[h%shardCount]
	s.mu.Lock()
	defer s.mu.Unlock()
	if j, ok := s.index[h]; ok {
		if sl := &s.slots[j]; s.matches(sl, account, token) {
			sl.value, sl.expires = v, expires.UnixNano()
			return
		}
		// Another key with the same hash: the newer one takes its place.
		s.release(j)
	}
	for len(s.index) > 0 && (len(s.index) >= c.perShard || s.live+klen > c.perShardBytes) {
		s.evict(now.UnixNano())
		c.evictions.Add(1)
	}
	var j int32
	if n := len(s.free); n > 0 {
		j, s.free = s.free[n-1], s.free[:n-1]
	} else {
		j = int32(len(s.slots))
		s.slots = append(s.slots, slot[V]{})
	}
	off := len(s.arena)
	s.arena = append(s.arena, account...)
	s.arena = append(s.arena, 0)
	s.arena = append(s.arena, token...)
	s.slots[j] = slot[V]{hash: h, expires: expires.UnixNano(), off: uint32(off), klen: uint32(klen), alen: uint32(len(account)), value: v}
	s.index[h] = j
	s.live += klen
	s.compact()
}

// release frees slot j; the caller holds the write lock.
func (s *shard[V]) release(j int32) {
	sl := &s.slots[j]
	delete(s.index, sl.hash)
	s.live -= int(sl.klen)
	*sl = slot[V]{}
	s.free = append(s.free, j)
}

// evict removes one entry: the first expired one among a random sample of
// slots, else the first sampled. The caller holds the write lock and
// knows the shard holds an entry.
func (s *shard[V]) evict(now int64) {
	victim := int32(-1)
	for tries, seen := 0, 0; tries < 4*evictSample && seen < evictSample; tries++ {
		j := int32(rand.IntN(len(s.slots)))
		sl := &s.slots[j]
		if sl.value == nil {
			continue
		}
		if victim < 0 {
			victim = j
		}
		if sl.expires <= now {
			victim = j
			break
		}
		seen++
	}
	if victim < 0 {
		// Mostly free slots: take any entry.
		for _, j := range s.index {
			victim = j
			break
		}
	}
	s.release(victim)
}

// compact rewrites the arena without the holes of released keys once they
// are most of it; the caller holds the write lock.
func (s *shard[V]) compact() {
	if len(s.arena) < 64<<10 || len(s.arena) < 2*s.live {
		return
	}
	// The new arena keeps the old one's size: a shard that churns through
	// tokens then compacts again before it grows, one allocation a round.
	arena := make([]byte, 0, max(len(s.arena), s.live+s.live/4))
	for j := range s.slots {
		sl := &s.slots[j]
		if sl.value == nil {
			continue
		}
		off := len(arena)
		arena = append(arena, s.arena[sl.off:sl.off+sl.klen]...)
		sl.off = uint32(off)
	}
	s.arena = arena
}

// Delete removes the entry of a token in an account.
func (c *Cache[V]) Delete(account, token string) {
	h := c.hash(account, token)
	s := &c.shards[h%shardCount]
	s.mu.Lock()
	if j, ok := s.index[h]; ok && s.matches(&s.slots[j], account, token) {
		s.release(j)
	}
	s.mu.Unlock()
}

// Len returns the number of entries, expired ones included.
func (c *Cache[V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.l[0].RLock()
		n += len(s.index)
		s.mu.l[0].RUnlock()
	}
	return n
}

// Bytes returns the bytes the entries' keys hold.
func (c *Cache[V]) Bytes() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.l[0].RLock()
		n += s.live
		s.mu.l[0].RUnlock()
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
