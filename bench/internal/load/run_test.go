package load

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when told: sleeping jumps to the
// wake-up time and a request takes its service time. Runs on it are
// deterministic with one connection, and nothing in these tests depends on
// the real time.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeConn answers every request after service time on the fake clock, and
// remembers when each request was sent.
type fakeConn struct {
	clk     *fakeClock
	service time.Duration
	fail    func(req []byte) bool
	sent    *[]time.Time
}

func (f *fakeConn) Do(req []byte) (int, []byte, error) {
	*f.sent = append(*f.sent, f.clk.Now())
	f.clk.advance(f.service)
	if f.fail != nil && f.fail(req) {
		return 500, nil, nil
	}
	return 200, []byte(`{"allow":true}`), nil
}

func (f *fakeConn) Close() error { return nil }

func fakeTarget(clk *fakeClock, service time.Duration, sent *[]time.Time) Target {
	return Target{
		Dial:    func() (Doer, error) { return &fakeConn{clk: clk, service: service, sent: sent}, nil },
		Request: func(i int) []byte { return []byte{byte(i)} },
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// releaseAll releases every request at once: with one connection on the
// fake clock, the connection's own wait for each due time paces the run,
// and the run is deterministic.
func releaseAll(_ context.Context, _ Schedule, n int, release func(k int)) {
	for k := range n {
		release(k)
	}
}

// TestPaceReleasesWhenDue: the pacer releases each request at its due time,
// in order.
func TestPaceReleasesWhenDue(t *testing.T) {
	clk := newFakeClock()
	s := Schedule{Start: clk.Now(), Rate: 3}
	var got []int
	Pace(clk)(context.Background(), s, 7, func(k int) {
		if now := clk.Now(); !now.Equal(s.At(k)) {
			t.Fatalf("request %d released at +%v, due at +%v", k, now.Sub(s.Start), s.At(k).Sub(s.Start))
		}
		got = append(got, k)
	})
	if len(got) != 7 || got[6] != 6 {
		t.Fatalf("released %v", got)
	}
}

// TestPaceStops: the pacer stops when its context ends.
func TestPaceStops(t *testing.T) {
	clk := newFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	Pace(clk)(ctx, Schedule{Start: clk.Now(), Rate: 10}, 100, func(k int) {
		if n++; k == 4 {
			cancel()
		}
	})
	if n != 5 {
		t.Fatalf("released %d after the end, want 5", n)
	}
}

// TestOpenPacesBySchedule: a server faster than the rate gets each request
// when it is due, and the latency is its service time.
func TestOpenPacesBySchedule(t *testing.T) {
	clk := newFakeClock()
	start := clk.Now()
	var sent []time.Time
	res, err := Open{Rate: 100, Concurrency: 1, Duration: time.Second, Clock: clk, Pacer: releaseAll}.Run(context.Background(), fakeTarget(clk, ms(1), &sent))
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 100 || len(sent) != 100 {
		t.Fatalf("%d requests recorded, %d sent, want 100", res.Requests, len(sent))
	}
	for k, at := range sent {
		if want := start.Add(time.Duration(k) * ms(10)); !at.Equal(want) {
			t.Fatalf("request %d sent at +%v, want +%v", k, at.Sub(start), want.Sub(start))
		}
	}
	if res.Percentile(0) != ms(1) || res.Percentile(100) != ms(1) {
		t.Fatalf("latencies from %v to %v, want 1ms", res.Percentile(0), res.Percentile(100))
	}
	if res.Lag != 0 || res.Elapsed != time.Second || res.Throughput() != 100 {
		t.Fatalf("lag %v, window %v, throughput %v", res.Lag, res.Elapsed, res.Throughput())
	}
}

// TestOpenCountsFromTheDueTime: a server slower than the rate falls
// behind; each request's latency runs from when it was due, not from when
// the busy connection got to send it (no coordinated omission).
func TestOpenCountsFromTheDueTime(t *testing.T) {
	clk := newFakeClock()
	var sent []time.Time
	// Due every 10ms, served in 20ms: request k is sent at 20k ms and
	// answered at 20(k+1) ms, 10k+20 ms after it was due.
	res, err := Open{Rate: 100, Concurrency: 1, Duration: ms(100), Clock: clk, Pacer: releaseAll}.Run(context.Background(), fakeTarget(clk, ms(20), &sent))
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 10 {
		t.Fatalf("%d requests, want 10", res.Requests)
	}
	for k, lat := range res.Latencies {
		if want := ms(10*k + 20); lat != want {
			t.Fatalf("latency %d = %v, want %v (all: %v)", k, lat, want, res.Latencies)
		}
	}
	// Sent 0, 10, …, 90 ms late: 45 ms on average.
	if res.Lag != ms(45) {
		t.Fatalf("lag %v, want 45ms", res.Lag)
	}
}

// TestOpenSkipsWarmup: requests due during the warm-up are sent but not
// recorded, and the window is the measured part only.
func TestOpenSkipsWarmup(t *testing.T) {
	clk := newFakeClock()
	var sent []time.Time
	res, err := Open{Rate: 100, Concurrency: 1, Warmup: ms(50), Duration: ms(100), Clock: clk, Pacer: releaseAll}.Run(context.Background(), fakeTarget(clk, ms(1), &sent))
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 15 || res.Requests != 10 || res.Elapsed != ms(100) {
		t.Fatalf("%d sent, %d recorded over %v; want 15, 10 over 100ms", len(sent), res.Requests, res.Elapsed)
	}
}

// TestOpenSpreadsOverConnections: with several connections every request
// due is sent exactly once.
func TestOpenSpreadsOverConnections(t *testing.T) {
	clk := newFakeClock()
	var mu sync.Mutex
	seen := map[byte]int{}
	target := Target{
		Dial: func() (Doer, error) {
			var sent []time.Time
			return &fakeConn{clk: clk, sent: &sent, fail: func(req []byte) bool {
				mu.Lock()
				defer mu.Unlock()
				seen[req[0]]++
				return false
			}}, nil
		},
		Request: func(i int) []byte { return []byte{byte(i)} },
	}
	res, err := Open{Rate: 1000, Concurrency: 8, Duration: ms(200), Clock: clk, Pacer: releaseAll}.Run(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 200 || len(seen) != 200 {
		t.Fatalf("%d recorded, %d distinct sent, want 200", res.Requests, len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("request %d sent %d times", k, n)
		}
	}
}

// TestClosedLoop: one connection sends back to back; requests sent during
// the warm-up or answered after the window are left out.
func TestClosedLoop(t *testing.T) {
	clk := newFakeClock()
	start := clk.Now()
	var sent []time.Time
	res, err := Closed{Concurrency: 1, Warmup: ms(10), Duration: ms(100), Clock: clk}.Run(context.Background(), fakeTarget(clk, ms(1), &sent))
	if err != nil {
		t.Fatal(err)
	}
	// Sent at 0, 1, …, 109 ms: 10 in the warm-up, 100 in the window.
	if len(sent) != 110 || res.Requests != 100 {
		t.Fatalf("%d sent, %d recorded; want 110, 100", len(sent), res.Requests)
	}
	for k, at := range sent {
		if want := start.Add(ms(k)); !at.Equal(want) {
			t.Fatalf("request %d sent at +%v, want +%v", k, at.Sub(start), want.Sub(start))
		}
	}
	if res.Throughput() != 1000 || res.Percentile(50) != ms(1) {
		t.Fatalf("throughput %v, p50 %v", res.Throughput(), res.Percentile(50))
	}
}

// TestClosedLoopRunsOut: with a bounded set of requests, each is sent once
// and the window ends with the last answer.
func TestClosedLoopRunsOut(t *testing.T) {
	clk := newFakeClock()
	var sent []time.Time
	target := fakeTarget(clk, ms(1), &sent)
	target.Requests = 50
	res, err := Closed{Concurrency: 1, Warmup: ms(10), Duration: time.Hour, Clock: clk}.Run(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 50 || res.Requests != 40 || res.Elapsed != ms(40) {
		t.Fatalf("%d sent, %d recorded over %v; want 50, 40 over 40ms", len(sent), res.Requests, res.Elapsed)
	}
}

// TestUnexpectedAnswersAreErrors: answers that OK refuses are counted and
// reported.
func TestUnexpectedAnswersAreErrors(t *testing.T) {
	clk := newFakeClock()
	var sent []time.Time
	target := Target{
		Dial: func() (Doer, error) {
			return &fakeConn{clk: clk, service: ms(1), sent: &sent, fail: func(req []byte) bool { return req[0]%10 == 0 }}, nil
		},
		Request: func(i int) []byte { return []byte{byte(i)} },
	}
	res, err := Closed{Concurrency: 1, Duration: ms(100), Clock: clk}.Run(context.Background(), target)
	if err == nil || !strings.Contains(err.Error(), "10 of 100 requests failed") {
		t.Fatalf("error %v, want 10 of 100 failed", err)
	}
	if res.Errors != 10 {
		t.Fatalf("%d errors, want 10", res.Errors)
	}
}

func TestDialFailure(t *testing.T) {
	boom := errors.New("refused")
	_, err := Closed{Concurrency: 2, Duration: time.Second}.Run(context.Background(), Target{Dial: func() (Doer, error) { return nil, boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want %v", err, boom)
	}
}
