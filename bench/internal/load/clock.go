package load

import (
	"math"
	"time"
)

// Clock tells the time and waits; tests replace the real one.
type Clock interface {
	Now() time.Time
	// SleepUntil returns at t or soon after (at once if t has passed).
	SleepUntil(t time.Time)
}

// RealClock is the system's clock.
type RealClock struct{}

// Now returns the current time.
func (RealClock) Now() time.Time { return time.Now() }

// SleepUntil sleeps until t.
func (RealClock) SleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

// sleeper is what the pacer of an open loop waits with.
type sleeper interface {
	SleepUntil(t time.Time)
	Close() error
}

// Schedule is when the requests of an open loop are due: request k at
// Start + k/Rate, computed from k each time so that rounding never
// accumulates.
type Schedule struct {
	Start time.Time
	// Rate is requests per second.
	Rate float64
}

// At returns when request k is due.
func (s Schedule) At(k int) time.Time {
	return s.Start.Add(time.Duration(float64(k) * float64(time.Second) / s.Rate))
}

// Count returns how many requests are due in [Start, Start+d).
func (s Schedule) Count(d time.Duration) int {
	if d <= 0 || s.Rate <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()*s.Rate - 1e-9))
}
