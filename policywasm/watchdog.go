package policywasm

import (
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// instance is one instantiation of a hook; it serves one call at a time.
type instance struct {
	mod             api.Module
	alloc, evaluate api.Function
	// fuel is the module's step budget (meter.Export): set before each
	// call, consumed by the guest, set to 0 by the watchdog to stop it.
	fuel api.MutableGlobal
	// stack carries the parameters and results of calls, so a call
	// allocates nothing on the host.
	stack [2]uint64

	// mem is the instance's linear memory; nil for a module without one.
	mem *linearMemory

	mu       sync.Mutex // guards the fields below and writes to fuel
	deadline time.Time  // of the running call; zero when idle
	stopped  bool       // the watchdog stopped the running call
}

// start arms the instance for a call of at most steps steps and d.
func (i *instance) start(steps uint64, d time.Duration) {
	i.mu.Lock()
	i.fuel.Set(min(steps, 1<<32-1))
	i.deadline = time.Now().Add(d)
	i.stopped = false
	i.mu.Unlock()
}

// finish disarms the instance after a call and says whether the watchdog
// stopped it and whether it ran out of steps.
func (i *instance) finish() (stopped, exhausted bool) {
	i.mu.Lock()
	stopped, exhausted = i.stopped, uint32(i.fuel.Get()) == 0
	i.deadline = time.Time{}
	i.mu.Unlock()
	return stopped, exhausted
}

// watchdog stops calls that run past their deadline, by setting their
// instance's budget to 0: the guest traps at its next function call or
// loop iteration. It wakes four times per call timeout.
type watchdog struct {
	mu        sync.Mutex
	instances map[*instance]struct{}
	done      chan struct{}
	stopOnce  sync.Once
}

func startWatchdog(timeout time.Duration) *watchdog {
	w := &watchdog{instances: map[*instance]struct{}{}, done: make(chan struct{})}
	go w.run(max(timeout/4, time.Millisecond))
	return w
}

func (w *watchdog) add(i *instance) {
	w.mu.Lock()
	w.instances[i] = struct{}{}
	w.mu.Unlock()
}

func (w *watchdog) remove(i *instance) {
	w.mu.Lock()
	delete(w.instances, i)
	w.mu.Unlock()
}

func (w *watchdog) stop() { w.stopOnce.Do(func() { close(w.done) }) }

// count returns the number of live instances.
func (w *watchdog) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.instances)
}

func (w *watchdog) run(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var live []*instance
	for {
		select {
		case <-w.done:
			return
		case now := <-t.C:
			live = live[:0]
			w.mu.Lock()
			for i := range w.instances {
				live = append(live, i)
			}
			w.mu.Unlock()
			for _, i := range live {
				i.mu.Lock()
				// The guest may write back a budget it read before
				// this write; the next tick writes 0 again.
				if !i.deadline.IsZero() && now.After(i.deadline) {
					i.fuel.Set(0)
					i.stopped = true
				}
				i.mu.Unlock()
			}
		}
	}
}
