// Package shard spreads values that many cores update at once over cache
// lines, so that cores rarely share one: with one shared line, two cores
// writing at once cost a cache-line transfer per write, about 10% of a
// cached check.
package shard

import (
	"sync/atomic"
	"unsafe"
)

// N is the number of shards: the hash's top 3 bits.
const N = 8

// Index picks a shard by the address of the caller's stack. Stacks are at
// least 8 KiB apart, so the bits above 13 differ between goroutines; a
// multiplicative hash spreads them, since larger stacks leave low bits at
// zero. A goroutine keeps to one shard (and its core keeps that line)
// while goroutines on other cores mostly use others. A stack that grows
// moves, which only changes the shard: callers that must undo on the same
// shard keep the index.
func Index() int {
	var x byte
	return int((uint64(uintptr(unsafe.Pointer(&x))>>13) * 0x9E3779B97F4A7C15) >> 61)
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
