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
