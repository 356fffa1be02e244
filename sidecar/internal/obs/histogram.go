// Package obs records what the check path measures: a lock-free duration
// histogram exported with both Prometheus native (sparse, exponential) and
// classic buckets, and plain atomic counters. client_golang's histogram
// costs about 45 ns an observation, and ten times that when two cores
// observe at once (it swaps hot and cold count sets); this one costs two
// or three atomic adds.
package obs

import (
	"math"
	"sort"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Native buckets use schema 3: each power of two splits into 8 buckets,
// each 9% wider than the last, as client_golang's default factor of 1.1
// gives. Bucket k holds values in (2^((k-1)/8), 2^(k/8)] seconds.
const (
	schema    = 3
	perOctave = 1 << schema
	// zeroThreshold: values at or below 2^-24 s (60 ns) count in the zero
	// bucket. No check is that fast.
	zeroKey       = -24 * perOctave
	zeroThreshold = 1.0 / (1 << 24)
	// maxKey: values above 2^10 s (17 min) count in the last bucket.
	maxKey  = 10 * perOctave
	nativeN = maxKey - zeroKey
)

// fracBounds are the upper bounds, within one power of two, of the schema's
// buckets: client_golang's values, so both place a value alike.
var fracBounds = []float64{
	0.5, 0.5452538663326288, 0.5946035575013605, 0.6484197773255048,
	0.7071067811865475, 0.7711054127039704, 0.8408964152537144, 0.9170040432046711,
}

// ClassicBuckets are the classic upper bounds, in seconds, from 1 µs.
var ClassicBuckets = []float64{
	1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1,
}

// key returns the native bucket of v > zeroThreshold, clamped to maxKey.
func key(v float64) int {
	frac, exp := math.Frexp(v)
	k := sort.SearchFloat64s(fracBounds, frac) + (exp-1)*perOctave
	return min(k, maxKey)
}

// classic relates native buckets to classic bounds. A classic bound lies
// inside one native bucket; observations in that bucket must be split at
// the bound, so that bucket counts those at or below it apart.
type classic struct {
	// split[i] is the classic bound inside native bucket index i, or -1.
	split [nativeN]int8
	// below[c] is the number of native buckets wholly at or below bound c.
	below []int
}

var layout = func() *classic {
	c := &classic{below: make([]int, len(ClassicBuckets))}
	for i := range c.split {
		c.split[i] = -1
	}
	for ci, b := range ClassicBuckets {
		i := key(b) - zeroKey - 1
		c.split[i] = int8(ci)
		c.below[ci] = i
	}
	return c
}()

// Histogram is a duration histogram safe for concurrent use. The zero value
// is empty and ready.
//
// It is not striped across cache lines: without knowing which core runs a
// goroutine, spreading adds over stripes at random moves lines between
// cores more often than one shared line does.
type Histogram struct {
	zero    atomic.Uint64
	sumNano atomic.Uint64
	native  [nativeN]atomic.Uint64
	// atOrBelow[c] counts observations in the native bucket holding
	// classic bound c that are at or below it.
	atOrBelow [maxClassic]atomic.Uint64
}

const maxClassic = 24

// Observe records one duration. Negative durations count as zero.
func (h *Histogram) Observe(d time.Duration) {
	s := h
	d = max(d, 0)
	s.sumNano.Add(uint64(d))
	v := d.Seconds()
	if v <= zeroThreshold {
		s.zero.Add(1)
		return
	}
	i := key(v) - zeroKey - 1
	s.native[i].Add(1)
	if c := layout.split[i]; c >= 0 && v <= ClassicBuckets[c] {
		s.atOrBelow[c].Add(1)
	}
}

// Snapshot is a histogram's counts at one moment.
type Snapshot struct {
	Count  uint64
	Sum    time.Duration
	Zero   uint64
	Native [nativeN]uint64
	// AtOrBelow is per classic bound, as in Histogram.
	AtOrBelow [maxClassic]uint64
}

// Snapshot reads the counts. Observations racing with it may show in some
// counts and not others; the next scrape has them.
func (h *Histogram) Snapshot() *Snapshot {
	out := &Snapshot{}
	h.AddTo(out)
	return out
}

// AddTo adds the histogram's counts to out, so that several can merge.
func (h *Histogram) AddTo(out *Snapshot) {
	zero := h.zero.Load()
	out.Zero += zero
	out.Count += zero
	out.Sum += time.Duration(h.sumNano.Load())
	for j := range h.native {
		n := h.native[j].Load()
		out.Native[j] += n
		out.Count += n
	}
	for c := range ClassicBuckets {
		out.AtOrBelow[c] += h.atOrBelow[c].Load()
	}
}

// Write fills m's histogram: the classic buckets and the native ones.
func (s *Snapshot) Write(m *dto.Metric) {
	h := &dto.Histogram{
		SampleCount:   proto(s.Count),
		SampleSum:     proto(s.Sum.Seconds()),
		Schema:        proto(int32(schema)),
		ZeroThreshold: proto(float64(zeroThreshold)),
		ZeroCount:     proto(s.Zero),
	}
	// Classic: the native buckets wholly below the bound, plus the part of
	// the one holding it. Counts are cumulative, so keep a running sum.
	cum, next := s.Zero, 0
	for c, b := range ClassicBuckets {
		for ; next < layout.below[c]; next++ {
			cum += s.Native[next]
		}
		h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto(b), CumulativeCount: proto(cum + s.AtOrBelow[c])})
	}
	// Native: spans of buckets in use, with delta-encoded counts; gaps of
	// up to two empty buckets are cheaper to send as zero deltas.
	var prev int64
	lastKey := math.MinInt
	for i, n := range s.Native {
		if n == 0 {
			continue
		}
		k := i + zeroKey + 1
		switch gap := k - lastKey - 1; {
		case lastKey != math.MinInt && gap <= 2:
			for range gap {
				h.PositiveDelta = append(h.PositiveDelta, -prev)
				prev = 0
			}
			h.PositiveSpan[len(h.PositiveSpan)-1].Length = proto(*h.PositiveSpan[len(h.PositiveSpan)-1].Length + uint32(gap) + 1)
		default:
			off := int32(k)
			if lastKey != math.MinInt {
				off = int32(gap)
			}
			h.PositiveSpan = append(h.PositiveSpan, &dto.BucketSpan{Offset: proto(off), Length: proto(uint32(1))})
		}
		h.PositiveDelta = append(h.PositiveDelta, int64(n)-prev)
		prev = int64(n)
		lastKey = k
	}
	if len(h.PositiveSpan) == 0 && s.Count == 0 {
		// An empty native histogram still needs a span to be told from a
		// classic-only one.
		h.PositiveSpan = []*dto.BucketSpan{{Offset: proto(int32(0)), Length: proto(uint32(0))}}
	}
	m.Histogram = h
}

func proto[T any](v T) *T { return &v }
