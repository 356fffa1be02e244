package obs

import (
	"sync/atomic"
	"unsafe"
)

// MaxClasses bounds the number of counters in a Counters.
const MaxClasses = 16

// counterShards spreads a Counters over cache lines. A goroutine adds to
// the shard its stack's address picks, so it keeps to one shard (and its
// core keeps that line) while goroutines on other cores mostly use others:
// with one shared line, two cores adding at once cost a cache-line transfer
// per add, about 10% of a cached check.
const counterShards = 8 // the hash's top 3 bits

// Counters is a fixed set of counters. The zero value is ready.
type Counters struct {
	s [counterShards]struct {
		n [MaxClasses]atomic.Uint64
		_ [64]byte // keeps the next shard's first counters off this shard's last line
	}
}

// Add adds one to counter c.
func (cs *Counters) Add(c int) { cs.s[stackShard()].n[c].Add(1) }

// Value returns counter c.
func (cs *Counters) Value(c int) uint64 {
	var n uint64
	for i := range cs.s {
		n += cs.s[i].n[c].Load()
	}
	return n
}

// stackShard picks a shard by the address of the caller's stack. Stacks are
// at least 8 KiB apart, so the bits above 13 differ between goroutines;
// a multiplicative hash spreads them, since larger stacks leave low bits
// at zero. A stack that grows moves, which only changes the shard.
func stackShard() int {
	var x byte
	return int((uint64(uintptr(unsafe.Pointer(&x))>>13) * 0x9E3779B97F4A7C15) >> 61)
}
