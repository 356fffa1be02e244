// Package shard spreads values that many cores update at once over cache
// lines, so that cores rarely share one: with one shared line, two cores
// writing at once cost a cache-line transfer per write, about 10% of a
// cached check.
package shard

import (
	"sync"
	"sync/atomic"
)

// N is the number of shards.
const N = 16

// slots hands each P (a core running Go code) an index of its own: a
// sync.Pool keeps one object per P, which a P takes and gives back without
// an atomic operation. Indexes are handed out in turn, so up to N cores
// never share one.
var (
	next  atomic.Uint32
	slots = sync.Pool{New: func() any {
		i := int(next.Add(1)-1) % N
		return &i
	}}
)

// Index picks the shard of the core the caller runs on. A goroutine moved
// to another core between two calls gets another index: callers that must
// undo on the same shard keep the index. An index taken by the stack's
// address instead (as before) put two goroutines on one shard about half
// the time, their stacks being allocated side by side.
func Index() int {
	p := slots.Get().(*int)
	i := *p
	slots.Put(p)
	return i
}

// Refs counts the holders of something shared, such as a set of policy
// hooks that checks are running: Acquire and Release cost an atomic add on
// the caller's shard, and Zero, which sums the shards, is for the rare
// caller that waits for the count to drain. The zero value is ready.
type Refs struct {
	s [N]struct {
		n atomic.Int64
		_ [56]byte // one shard a cache line
	}
}

// Acquire adds a holder and returns the shard to release it on.
func (r *Refs) Acquire() int {
	i := Index()
	r.s[i].n.Add(1)
	return i
}

// Release removes a holder that Acquire returned shard i for.
func (r *Refs) Release(i int) { r.s[i].n.Add(-1) }

// Zero reports whether nobody holds it. Once no new holder can come (the
// thing was replaced, and holders check that after Acquire), a true answer
// stays true.
func (r *Refs) Zero() bool {
	var n int64
	for i := range r.s {
		n += r.s[i].n.Load()
	}
	return n == 0
}
