//go:build !linux

package load

import "time"

// coarseSleeper is time.Sleep, where there is no timerfd.
type coarseSleeper struct{}

func newPreciseSleeper() (sleeper, error) { return coarseSleeper{}, nil }

func (coarseSleeper) SleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

func (coarseSleeper) Close() error { return nil }
