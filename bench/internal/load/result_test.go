package load

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	thousand := make([]time.Duration, 1000)
	for i := range thousand {
		thousand[i] = ms(i + 1)
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{name: "empty", sorted: nil, p: 50, want: 0},
		{name: "one value, p50", sorted: []time.Duration{ms(7)}, p: 50, want: ms(7)},
		{name: "one value, p99.9", sorted: []time.Duration{ms(7)}, p: 99.9, want: ms(7)},
		{name: "p0 is the smallest", sorted: thousand, p: 0, want: ms(1)},
		{name: "p50 of 1000", sorted: thousand, p: 50, want: ms(500)},
		{name: "p99 of 1000", sorted: thousand, p: 99, want: ms(990)},
		{name: "p99.9 of 1000", sorted: thousand, p: 99.9, want: ms(999)},
		{name: "p100 is the largest", sorted: thousand, p: 100, want: ms(1000)},
		{name: "p50 of 4 is the 2nd", sorted: []time.Duration{ms(1), ms(2), ms(3), ms(4)}, p: 50, want: ms(2)},
		{name: "p99 of 10 is the largest", sorted: thousand[:10], p: 99, want: ms(10)},
		{name: "p99.9 of 10000 is the 9990th", sorted: seq(10000), p: 99.9, want: 9990},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Percentile(c.sorted, c.p); got != c.want {
				t.Fatalf("Percentile(%d values, %v) = %v, want %v", len(c.sorted), c.p, got, c.want)
			}
		})
	}
}

func seq(n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = time.Duration(i + 1)
	}
	return s
}

func TestMergeSorts(t *testing.T) {
	got := merge([][]time.Duration{{5, 1}, nil, {3, 2, 4}})
	for i, want := range []time.Duration{1, 2, 3, 4, 5} {
		if got[i] != want {
			t.Fatalf("merge = %v", got)
		}
	}
}

func TestThroughput(t *testing.T) {
	r := Result{Requests: 500, Elapsed: 2 * time.Second}
	if got := r.Throughput(); got != 250 {
		t.Fatalf("throughput %v, want 250", got)
	}
	if got := (Result{Requests: 5}).Throughput(); got != 0 {
		t.Fatalf("throughput without a window %v, want 0", got)
	}
}

func TestSchedule(t *testing.T) {
	start := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	s := Schedule{Start: start, Rate: 3}
	// No drift: request 3n is due exactly n seconds in, though 1/3 s is not
	// a whole number of nanoseconds.
	for _, n := range []int{1, 10, 1000, 100000} {
		if got := s.At(3 * n); !got.Equal(start.Add(time.Duration(n) * time.Second)) {
			t.Fatalf("At(%d) = %v, want %d s after the start", 3*n, got.Sub(start), n)
		}
	}
	for k := 1; k < 1000; k++ {
		if !s.At(k).After(s.At(k - 1)) {
			t.Fatalf("At(%d) is not after At(%d)", k, k-1)
		}
	}
	counts := []struct {
		rate float64
		d    time.Duration
		want int
	}{
		{rate: 10, d: time.Second, want: 10},                   // due at 0, 0.1, …, 0.9
		{rate: 10, d: 1050 * time.Millisecond, want: 11},       // and at 1.0
		{rate: 3, d: time.Second, want: 3},                     // 0, 1/3, 2/3
		{rate: 1000, d: 10 * time.Second, want: 10000},         // no rounding up
		{rate: 12345.6, d: 10 * time.Second, want: 123456},     // fractional rates
		{rate: 10, d: 0, want: 0},                              // nothing
		{rate: 0, d: time.Second, want: 0},                     // no rate
		{rate: 0.5, d: 3 * time.Second, want: 2},               // 0, 2 s
		{rate: 20000, d: 1500 * time.Millisecond, want: 30000}, // the defaults' order
	}
	for _, c := range counts {
		if got := (Schedule{Start: start, Rate: c.rate}).Count(c.d); got != c.want {
			t.Errorf("Count at %v/s over %v = %d, want %d", c.rate, c.d, got, c.want)
		}
	}
}
