package tokencache

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestCoreCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New[int](32)
	v := 7
	c.Put("a", "tok", &v, now.Add(time.Minute), now)
	if got, ok := c.Get("a", "tok", now); !ok || *got != 7 {
		t.Fatal("miss after put")
	}
	if _, ok := c.Get("b", "tok", now); ok {
		t.Fatal("hit in another account")
	}
	if _, ok := c.Get("a", "tok", now.Add(time.Minute)); ok {
		t.Fatal("hit at expiry")
	}
	c.Delete("a", "tok")
	if _, ok := c.Get("a", "tok", now); ok {
		t.Fatal("hit after delete")
	}
	for i := 0; i < 1000; i++ {
		c.Put("a", fmt.Sprint(i), &v, now.Add(time.Hour), now)
	}
	if n := c.Len(); n > 32 {
		t.Fatalf("%d entries, bound 32", n)
	}
	if c.Stats().Evictions == 0 {
		t.Fatal("no evictions counted")
	}
	off := New[int](-1)
	off.Put("a", "tok", &v, now.Add(time.Hour), now)
	if off.Len() != 0 {
		t.Fatal("a disabled cache stored an entry")
	}
	if n := testing.AllocsPerRun(100, func() { c.Get("a", "999", now) }); n != 0 {
		t.Fatalf("Get allocates %v times", n)
	}
}

func TestCoreCacheConcurrent(t *testing.T) {
	t.Parallel()
	c := New[int](64)
	now := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := g
			for i := 0; i < 2000; i++ {
				k := fmt.Sprint(i % 200)
				c.Put("a", k, &v, now.Add(time.Hour), now)
				c.Get("a", k, now)
				if i%7 == 0 {
					c.Delete("a", k)
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() > 64 {
		t.Fatalf("%d entries, bound 64", c.Len())
	}
}

// BenchmarkGetParallel is every core looking up the same hot token: what a
// cached check asks of the cache. A lookup must write no cache line that
// another core's lookup writes too.
func BenchmarkGetParallel(b *testing.B) {
	c := New[int](1000)
	v, now := 1, time.Now()
	c.Put("acc", "token", &v, now.Add(time.Hour), now)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := c.Get("acc", "token", now); !ok {
				b.Error("missed")
				return
			}
		}
	})
}

// TestCacheBytes: the keys' bytes are bounded as well as the entries; a
// token too large for a shard is not stored; released keys' bytes are
// given back to the arena once they are most of it, and every entry left
// is still found.
func TestCacheBytes(t *testing.T) {
	now := time.Unix(1000, 0)
	v := 1
	c := NewBounded[int](1000, 16*1000)                          // 1 000 bytes of keys per shard
	tok := func(i int) string { return fmt.Sprintf("%090d", i) } // 92-byte keys with "a"
	for i := range 2000 {
		c.Put("a", tok(i), &v, now.Add(time.Hour), now)
	}
	if b := c.Bytes(); b > 16*1000 {
		t.Fatalf("%d bytes of keys, bound %d", b, 16*1000)
	}
	if c.Len() > 16*10 {
		t.Fatalf("%d entries: more than the bytes hold", c.Len())
	}
	c.Put("a", fmt.Sprintf("%02000d", 1), &v, now.Add(time.Hour), now)
	if _, ok := c.Get("a", fmt.Sprintf("%02000d", 1), now); ok {
		t.Fatal("a key larger than a shard's bytes was stored")
	}

	big := New[int](4096)
	for round := range 50 {
		for i := range 1000 {
			big.Put("a", tok(round*1000+i), &v, now.Add(time.Hour), now)
		}
		for i := range 1000 {
			if i%10 != 0 {
				big.Delete("a", tok(round*1000+i))
			}
		}
	}
	for s := range big.shards {
		sh := &big.shards[s]
		if len(sh.arena) > 2*sh.live+64<<10+1024 {
			t.Fatalf("shard %d: arena %d bytes for %d live", s, len(sh.arena), sh.live)
		}
	}
	found := 0
	for round := range 50 {
		for i := 0; i < 1000; i += 10 {
			if _, ok := big.Get("a", tok(round*1000+i), now); ok {
				found++
			}
		}
	}
	if found != big.Len() {
		t.Fatalf("%d entries found, %d held", found, big.Len())
	}
}

// TestCacheSameHash: a slot answers only for its own key, whatever the
// hash says: a key whose hash another key's slot holds is a miss, and
// storing it replaces the other.
func TestCacheSameHash(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New[int](64)
	one, two := 1, 2
	c.Put("a", "tok-1", &one, now.Add(time.Hour), now)
	// Make tok-2's hash point at tok-1's slot, as a collision would.
	h1, h2 := c.hash("a", "tok-1"), c.hash("a", "tok-2")
	s1 := &c.shards[h1%shardCount]
	s2 := &c.shards[h2%shardCount]
	if s1 != s2 {
		// Only a same-shard collision can happen; move tok-1 there.
		c.Delete("a", "tok-1")
		s2.index[h2] = int32(len(s2.slots))
		s2.slots = append(s2.slots, slot[int]{hash: h2, expires: now.Add(time.Hour).UnixNano(), off: uint32(len(s2.arena)), klen: 7, alen: 1, value: &one})
		s2.arena = append(s2.arena, "a\x00tok-1"...)
		s2.live += 7
	} else {
		s1.index[h2] = s1.index[h1]
	}
	if _, ok := c.Get("a", "tok-2", now); ok {
		t.Fatal("a slot answered for another key with its hash")
	}
	c.Put("a", "tok-2", &two, now.Add(time.Hour), now)
	if v, ok := c.Get("a", "tok-2", now); !ok || *v != 2 {
		t.Fatal("the key was not stored over the other")
	}
}
