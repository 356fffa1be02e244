package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Doer sends one prepared request and returns the answer; *Conn is one.
type Doer interface {
	Do(req []byte) (status int, body []byte, err error)
	Close() error
}

// Target is what a run sends and where.
type Target struct {
	// Dial opens one connection; HTTP(addr) for a server.
	Dial func() (Doer, error)
	// Request returns the i-th request (i from 0), prepared with PostJSON.
	Request func(i int) []byte
	// Requests, when not 0, is how many requests there are: each is sent
	// once and the run ends early when they are all sent.
	Requests int
	// OK says whether an answer is the expected one; nil accepts 200.
	OK func(status int, body []byte) bool
	// Expect, when set, replaces OK with a check that knows which request
	// (i) the answer is to, for loads that mix requests of different
	// answers.
	Expect func(i, status int, body []byte) bool
}

// HTTP dials keep-alive HTTP/1.1 connections to addr.
func HTTP(addr string) func() (Doer, error) {
	return func() (Doer, error) { return Dial(addr) }
}

func (t Target) ok(i, status int, body []byte, err error) bool {
	if err != nil {
		return false
	}
	if t.Expect != nil {
		return t.Expect(i, status, body)
	}
	if t.OK == nil {
		return status == 200
	}
	return t.OK(status, body)
}

// more reports whether request i exists.
func (t Target) more(i int) bool { return t.Requests == 0 || i < t.Requests }

func dialAll(t Target, n int) ([]Doer, error) {
	if n < 1 {
		return nil, errors.New("load: concurrency must be at least 1")
	}
	conns := make([]Doer, 0, n)
	for range n {
		c, err := t.Dial()
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func closeAll(conns []Doer) {
	for _, c := range conns {
		c.Close()
	}
}

// recorder is one connection's recordings.
type recorder struct {
	lat    []time.Duration
	errs   int
	lag    time.Duration
	last   time.Time
	errMsg error
}

func (r *recorder) record(lat time.Duration, t Target, i, status int, body []byte, err error, done time.Time) {
	r.lat = append(r.lat, lat)
	if !t.ok(i, status, body, err) {
		r.errs++
		if r.errMsg == nil {
			if err == nil {
				err = fmt.Errorf("an unexpected answer: %d %.200q", status, body)
			}
			r.errMsg = err
		}
	}
	if done.After(r.last) {
		r.last = done
	}
}

func collect(recs []recorder) (Result, error) {
	var res Result
	parts := make([][]time.Duration, len(recs))
	var firstErr error
	for i := range recs {
		parts[i] = recs[i].lat
		res.Errors += recs[i].errs
		res.Lag += recs[i].lag
		if firstErr == nil {
			firstErr = recs[i].errMsg
		}
	}
	res.Latencies = merge(parts)
	res.Requests = len(res.Latencies)
	if res.Requests > 0 {
		res.Lag /= time.Duration(res.Requests)
	}
	if firstErr != nil {
		firstErr = fmt.Errorf("load: %d of %d requests failed, the first with: %w", res.Errors, res.Requests, firstErr)
	}
	return res, firstErr
}

// Closed is a closed-loop run: Concurrency connections each send a request
// as soon as their last is answered, for Warmup (not recorded) and then
// Duration. Latency is from send to answer.
type Closed struct {
	Concurrency      int
	Warmup, Duration time.Duration
	// Clock defaults to RealClock.
	Clock Clock
}

// Run runs the loop against t until the time is up, ctx ends, or t's
// requests run out. A request that fails or gets an unexpected answer is
// counted in Result.Errors and the run goes on; the returned error then
// says how many failed and why the first did.
func (c Closed) Run(ctx context.Context, t Target) (Result, error) {
	clk := c.Clock
	if clk == nil {
		clk = RealClock{}
	}
	conns, err := dialAll(t, c.Concurrency)
	if err != nil {
		return Result{}, err
	}
	defer closeAll(conns)
	from := clk.Now().Add(c.Warmup)
	end := from.Add(c.Duration)
	var next atomic.Int64
	var ranOut atomic.Bool
	recs := onEach(conns, func(conn Doer, rec *recorder) {
		for ctx.Err() == nil {
			i := int(next.Add(1) - 1)
			if !t.more(i) {
				ranOut.Store(true)
				return
			}
			req := t.Request(i)
			sent := clk.Now()
			if !sent.Before(end) {
				return
			}
			status, body, err := conn.Do(req)
			done := clk.Now()
			if sent.Before(from) || done.After(end) {
				continue
			}
			rec.record(done.Sub(sent), t, i, status, body, err, done)
		}
	})
	res, err := collect(recs)
	res.Elapsed = c.Duration
	if ranOut.Load() {
		// The requests ran out before the time: the window ends with the
		// last answer.
		var last time.Time
		for _, r := range recs {
			if r.last.After(last) {
				last = r.last
			}
		}
		res.Elapsed = max(last.Sub(from), 0)
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, err
}

// Open is an open-loop run at a constant rate: request k is due at
// start + k/Rate, for Warmup (not recorded) and then Duration. A pacer
// releases each request when it is due; Concurrency connections take the
// released requests in order, and each records the latency from the time
// its request was due. A request released while every connection is busy
// waits, and the wait counts: the latency is what a caller sending at that
// time would see.
type Open struct {
	Rate             float64
	Concurrency      int
	Warmup, Duration time.Duration
	// Clock defaults to RealClock.
	Clock Clock
	// Pacer releases the requests; nil is a pacer that waits for each due
	// time on the real clock, more precisely than time.Sleep.
	Pacer Pacer
}

// Pacer calls release(k) for k from 0 to n-1, each when request k is due
// (or earlier: the connection then waits for the due time on the run's
// clock), and returns when done or when ctx ends.
type Pacer func(ctx context.Context, s Schedule, n int, release func(k int))

// Pace is the pacer that waits with clk between releases.
func Pace(clk Clock) Pacer {
	return func(ctx context.Context, s Schedule, n int, release func(k int)) {
		pace(ctx, s, n, clk.SleepUntil, release)
	}
}

func pace(ctx context.Context, s Schedule, n int, sleepUntil func(time.Time), release func(k int)) {
	for k := 0; k < n && ctx.Err() == nil; k++ {
		sleepUntil(s.At(k))
		release(k)
	}
}

// precisePacer waits on a timerfd where there is one.
func precisePacer(ctx context.Context, s Schedule, n int, release func(k int)) {
	sl, err := newPreciseSleeper()
	if err != nil {
		pace(ctx, s, n, RealClock{}.SleepUntil, release)
		return
	}
	defer sl.Close()
	pace(ctx, s, n, sl.SleepUntil, release)
}

// Run runs the loop against t; errors are as Closed.Run's.
func (o Open) Run(ctx context.Context, t Target) (Result, error) {
	clk, pacer := o.Clock, o.Pacer
	if clk == nil {
		clk = RealClock{}
	}
	if pacer == nil {
		pacer = precisePacer
	}
	if o.Rate <= 0 {
		return Result{}, errors.New("load: the rate must be positive")
	}
	conns, err := dialAll(t, o.Concurrency)
	if err != nil {
		return Result{}, err
	}
	defer closeAll(conns)
	sched := Schedule{Start: clk.Now(), Rate: o.Rate}
	warm := sched.Count(o.Warmup)
	total := sched.Count(o.Warmup + o.Duration)
	if t.Requests > 0 {
		total = min(total, t.Requests)
	}
	released := make(chan int, total)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(released)
		pacer(ctx, sched, total, func(k int) { released <- k })
	}()
	recs := onEach(conns, func(conn Doer, rec *recorder) {
		for k := range released {
			if ctx.Err() != nil {
				return
			}
			due := sched.At(k)
			clk.SleepUntil(due)
			sent := clk.Now()
			status, body, err := conn.Do(t.Request(k))
			done := clk.Now()
			if k < warm {
				continue
			}
			rec.lag += sent.Sub(due)
			rec.record(done.Sub(due), t, k, status, body, err, done)
		}
	})
	res, err := collect(recs)
	// The window is the time over which the recorded requests were due.
	res.Elapsed = sched.At(total).Sub(sched.At(warm))
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, err
}

// onEach runs work on every connection at once, each with a recorder of its
// own, and returns the recorders once every work has returned.
func onEach(conns []Doer, work func(conn Doer, rec *recorder)) []recorder {
	recs := make([]recorder, len(conns))
	var wg sync.WaitGroup
	for w, conn := range conns {
		wg.Go(func() { work(conn, &recs[w]) })
	}
	wg.Wait()
	return recs
}
