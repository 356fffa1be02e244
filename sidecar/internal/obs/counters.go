package obs

import "sync/atomic"

// Counters is a fixed set of counters. The zero value is ready. Like
// Histogram it is not striped; see there why.
type Counters struct {
	n [MaxClasses]atomic.Uint64
}

// MaxClasses bounds the number of counters in a Counters.
const MaxClasses = 16

// Add adds one to counter c.
func (cs *Counters) Add(c int) { cs.n[c].Add(1) }

// Value returns counter c.
func (cs *Counters) Value(c int) uint64 { return cs.n[c].Load() }
