// Package watermark is a store revision that only moves forward, and a
// wait for it to reach one: what the parts that follow the store (the
// policy hooks, a route table) tell an admin write that waits until this
// node serves it.
package watermark

import (
	"context"
	"sync"
)

// Mark is a revision that only moves forward. The zero value is at
// revision 0 and ready.
type Mark struct {
	mu      sync.Mutex
	rev     int64
	changed chan struct{} // closed and replaced when rev moves; made on first use
}

// Advance moves the mark to rev, unless it is there or past it already.
func (m *Mark) Advance(rev int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rev <= m.rev {
		return
	}
	m.rev = rev
	if m.changed != nil {
		close(m.changed)
		m.changed = nil
	}
}

// Load returns the revision the mark is at.
func (m *Mark) Load() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rev
}

// Wait waits until the mark is at rev or past it, or ctx ends; it returns
// the revision the mark was at when it stopped waiting.
func (m *Mark) Wait(ctx context.Context, rev int64) (int64, error) {
	for {
		m.mu.Lock()
		at := m.rev
		if m.changed == nil {
			m.changed = make(chan struct{})
		}
		ch := m.changed
		m.mu.Unlock()
		if at >= rev {
			return at, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return at, ctx.Err()
		}
	}
}
