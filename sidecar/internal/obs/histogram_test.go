package obs

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// reference is client_golang's own histogram with the same layout.
func reference() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "ref", Help: "ref", Buckets: ClassicBuckets,
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramZeroThreshold:    zeroThreshold,
		NativeHistogramMaxBucketNumber:  0,
		NativeHistogramMinResetDuration: time.Hour,
	})
}

func write(t *testing.T, c prometheus.Metric) *dto.Histogram {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.Histogram
}

// expand turns spans and deltas into key → count.
func expand(h *dto.Histogram) map[int]uint64 {
	out := map[int]uint64{}
	k, di := 0, 0
	var n int64
	for i, sp := range h.PositiveSpan {
		if i == 0 {
			k = int(sp.GetOffset())
		} else {
			k += int(sp.GetOffset())
		}
		for j := uint32(0); j < sp.GetLength(); j++ {
			n += h.PositiveDelta[di]
			di++
			if n != 0 {
				out[k] = uint64(n)
			}
			k++
		}
	}
	return out
}

type snapMetric struct{ h *Histogram }

func (snapMetric) Desc() *prometheus.Desc { return nil }
func (s snapMetric) Write(m *dto.Metric) error {
	s.h.Snapshot().Write(m)
	return nil
}

// The histogram places every value where client_golang's does, in both its
// native and its classic buckets.
func TestHistogramMatchesClientGolang(t *testing.T) {
	cases := []struct {
		name   string
		values []time.Duration
	}{
		{"empty", nil},
		{"one", []time.Duration{600 * time.Nanosecond}},
		{"classic bounds exactly", []time.Duration{time.Microsecond, 2500 * time.Nanosecond, time.Millisecond, time.Second}},
		{"zero and negative", []time.Duration{0, -time.Second, 59 * time.Nanosecond}},
		{"far beyond the range", []time.Duration{time.Hour}},
		{"adjacent and gapped", []time.Duration{1000, 1090, 1190, 1400, 5000, 5000, 90000}},
	}
	r := rand.New(rand.NewPCG(1, 2))
	var spread []time.Duration
	for range 5000 {
		spread = append(spread, time.Duration(math.Exp(r.Float64()*20))) // 1 ns .. 0.5 s
	}
	cases = append(cases, struct {
		name   string
		values []time.Duration
	}{"log-uniform spread", spread})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			ref := reference()
			for _, d := range tc.values {
				h.Observe(d)
				if d < 0 {
					d = 0
				}
				// Beyond the last bucket, Warden clamps; client_golang
				// would make a new bucket. Compare within the range.
				ref.Observe(math.Min(d.Seconds(), math.Exp2(maxKey/perOctave)))
			}
			got, want := write(t, snapMetric{&h}), write(t, ref)
			if got.GetSampleCount() != want.GetSampleCount() || got.GetZeroCount() != want.GetZeroCount() {
				t.Errorf("count %d zero %d, want %d and %d", got.GetSampleCount(), got.GetZeroCount(), want.GetSampleCount(), want.GetZeroCount())
			}
			if tc.name != "far beyond the range" && math.Abs(got.GetSampleSum()-want.GetSampleSum()) > 1e-6*math.Max(1, want.GetSampleSum()) {
				t.Errorf("sum %g, want %g", got.GetSampleSum(), want.GetSampleSum())
			}
			if got.GetSchema() != want.GetSchema() || got.GetZeroThreshold() != want.GetZeroThreshold() {
				t.Errorf("schema %d zero threshold %g, want %d and %g", got.GetSchema(), got.GetZeroThreshold(), want.GetSchema(), want.GetZeroThreshold())
			}
			gn, wn := expand(got), expand(want)
			if len(gn) != len(wn) {
				t.Errorf("%d native buckets, want %d: %v vs %v", len(gn), len(wn), gn, wn)
			}
			for k, n := range wn {
				if gn[k] != n {
					t.Errorf("native bucket %d: %d, want %d", k, gn[k], n)
				}
			}
			if len(got.Bucket) != len(want.Bucket) {
				t.Fatalf("%d classic buckets, want %d", len(got.Bucket), len(want.Bucket))
			}
			for i := range want.Bucket {
				if got.Bucket[i].GetUpperBound() != want.Bucket[i].GetUpperBound() || got.Bucket[i].GetCumulativeCount() != want.Bucket[i].GetCumulativeCount() {
					t.Errorf("classic le=%g: %d, want %d", want.Bucket[i].GetUpperBound(), got.Bucket[i].GetCumulativeCount(), want.Bucket[i].GetCumulativeCount())
				}
			}
			if len(tc.values) == 0 && len(got.PositiveSpan) == 0 {
				t.Error("an empty histogram has no span, so it reads as classic only")
			}
		})
	}
}

func TestHistogramConcurrent(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Observe(time.Duration(g*1000 + i))
			}
		}()
	}
	wg.Wait()
	s := h.Snapshot()
	if s.Count != 4000 {
		t.Fatalf("count %d, want 4000", s.Count)
	}
	var want time.Duration
	for g := range 4 {
		for i := range 1000 {
			want += time.Duration(g*1000 + i)
		}
	}
	if s.Sum != want {
		t.Fatalf("sum %s, want %s", s.Sum, want)
	}
}

func TestCounters(t *testing.T) {
	var c Counters
	for i := range 100 {
		c.Add(i % 3)
	}
	if c.Value(0) != 34 || c.Value(1) != 33 || c.Value(2) != 33 || c.Value(3) != 0 {
		t.Fatalf("values %d %d %d %d", c.Value(0), c.Value(1), c.Value(2), c.Value(3))
	}
}

func BenchmarkObserve(b *testing.B) {
	var h Histogram
	for b.Loop() {
		h.Observe(600 * time.Nanosecond)
	}
}

func BenchmarkObserveParallel(b *testing.B) {
	var h Histogram
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Observe(600 * time.Nanosecond)
		}
	})
}
