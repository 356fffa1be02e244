package policywasm

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// budget is the memory the instances of every hook in a runtime may hold
// together. Each instance's linear memory takes its bytes from it as it
// grows, and gives them back when the instance closes: a grow past the
// budget fails, as a grow past the instance's own cap does.
type budget struct {
	limit uint64
	used  atomic.Uint64
}

// take reserves n bytes, or says the budget cannot hold them.
func (b *budget) take(n uint64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *budget) give(n uint64) { b.used.Add(^(n - 1)) }

// linearMemory backs one instance's linear memory with a Go slice whose
// length is charged to the runtime's budget.
type linearMemory struct {
	b   *budget
	buf []byte
	// charged is what buf's length holds of the budget.
	charged uint64
	// refused says a grow failed because the budget was spent, so the
	// call's failure is told as memory, not as the guest's own abort.
	refused atomic.Bool
	// overdrawn says the instance's initial memory did not fit: it was
	// given anyway (wazero cannot take a refusal there) and the instance
	// is closed before it serves.
	overdrawn bool
	mu        sync.Mutex // Reallocate and Free come from the guest and from Close
}

// Reallocate implements experimental.LinearMemory.
func (m *linearMemory) Reallocate(size uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if size <= uint64(len(m.buf)) {
		return m.buf[:size]
	}
	grow := size - uint64(len(m.buf))
	if !m.b.take(grow) {
		if m.buf != nil {
			m.refused.Store(true)
			return nil
		}
		// The initial memory: wazero requires it.
		m.overdrawn = true
		m.b.used.Add(grow)
	}
	m.charged += grow
	// append grows the capacity geometrically, as wazero's own memory
	// does, so a guest that grows page by page copies little.
	m.buf = append(m.buf, make([]byte, grow)...)
	return m.buf
}

// Free implements experimental.LinearMemory.
func (m *linearMemory) Free() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.b.give(m.charged)
	m.charged, m.buf = 0, nil
}

// allocator hands out one linearMemory and remembers it, so the instance
// being made can find its memory.
type allocator struct {
	b   *budget
	mem *linearMemory
}

// Allocate implements experimental.MemoryAllocator.
func (a *allocator) Allocate(_, _ uint64) experimental.LinearMemory {
	a.mem = &linearMemory{b: a.b}
	return a.mem
}

// errFull is the failure of an instance whose initial memory does not
// fit in the budget.
func (b *budget) errFull(name string) error {
	return fmt.Errorf("hook %q: the policy hooks' memory total of %s is in use (--hook-memory-total-pages)", name, b)
}

// String tells the budget's limit in MiB, or in KiB below one MiB.
func (b *budget) String() string {
	if b.limit < 1<<20 {
		return fmt.Sprintf("%d KiB", b.limit>>10)
	}
	return fmt.Sprintf("%d MiB", b.limit>>20)
}
