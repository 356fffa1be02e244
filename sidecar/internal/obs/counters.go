package obs

import (
	"sync/atomic"

	"github.com/wardenauthz/warden/sidecar/internal/shard"
)

// MaxClasses bounds the number of counters in a Counters.
const MaxClasses = 32

// Counters is a fixed set of counters, spread over the shards of package
// shard. The zero value is ready.
type Counters struct {
	s [shard.N]struct {
		n [MaxClasses]atomic.Uint64
		_ [64]byte // keeps the next shard's first counters off this shard's last line
	}
}

// Add adds one to counter c.
func (cs *Counters) Add(c int) { cs.AddOn(shard.Index(), c) }

// AddOn adds one to counter c on shard i, the caller's (shard.Index).
func (cs *Counters) AddOn(i, c int) { cs.s[i].n[c].Add(1) }

// Value returns counter c.
func (cs *Counters) Value(c int) uint64 {
	var n uint64
	for i := range cs.s {
		n += cs.s[i].n[c].Load()
	}
	return n
}
