// Package load is the load generator of Warden's benchmarks, the same for
// every server it is pointed at: keep-alive HTTP/1.1 connections sending
// prepared requests, either in a closed loop (each connection sends its next
// request as soon as the last is answered, to find the most a server can
// answer) or in an open loop at a constant rate (requests are due at fixed
// times whatever the server does, and latency is counted from the time a
// request was due, so a server that stalls is not excused by the requests
// it held back: no coordinated omission).
package load

import (
	"math"
	"slices"
	"time"
)

// Result is what a run measured.
type Result struct {
	// Requests is the number of answers recorded (within the measured
	// window, after the warm-up), Errors the failed or unexpected ones
	// among them.
	Requests, Errors int
	// Elapsed is the measured window.
	Elapsed time.Duration
	// Latencies of the recorded answers, sorted.
	Latencies []time.Duration
	// Lag is how late the open loop sent its requests, on average, after
	// they were due (0 for a closed loop): a generator that cannot keep up
	// shows here.
	Lag time.Duration
}

// Throughput is answers per second over the measured window.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Percentile returns the latency at or below which p percent of the
// answers fall (nearest rank: the ceil(p/100 × n)-th smallest), or 0 when
// nothing was recorded.
func (r Result) Percentile(p float64) time.Duration {
	return Percentile(r.Latencies, p)
}

// Percentile is the nearest-rank percentile p of sorted latencies.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// The epsilon keeps 99.9 % of 1000 at rank 999 despite binary floats.
	rank := int(math.Ceil(p/100*float64(n) - 1e-9))
	return sorted[min(max(rank, 1), n)-1]
}

// merge joins per-connection recordings into a sorted result.
func merge(parts [][]time.Duration) []time.Duration {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	all := make([]time.Duration, 0, n)
	for _, p := range parts {
		all = append(all, p...)
	}
	slices.Sort(all)
	return all
}
