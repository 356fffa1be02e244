package load

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// preciseSleeper sleeps on a timerfd read through Go's network poller:
// time.Sleep can wake up a millisecond late (the runtime's timers may wait
// in epoll with a timeout in whole milliseconds), which at tens of
// thousands of requests a second would bunch them up; a timerfd wakes the
// poller within tens of microseconds, and the goroutine holds no thread
// while it waits.
type preciseSleeper struct {
	fd int
	f  *os.File
}

func newPreciseSleeper() (sleeper, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &preciseSleeper{fd: fd, f: os.NewFile(uintptr(fd), "timerfd")}, nil
}

func (s *preciseSleeper) SleepUntil(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if err := unix.TimerfdSettime(s.fd, 0, &spec, nil); err != nil {
		time.Sleep(d)
		return
	}
	var buf [8]byte
	if _, err := s.f.Read(buf[:]); err != nil {
		time.Sleep(time.Until(t))
	}
}

func (s *preciseSleeper) Close() error { return s.f.Close() }
