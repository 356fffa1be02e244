package policywasm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
)

// Hook is a loaded module with its pool of instances. It is safe for
// concurrent use.
type Hook struct {
	name, digest string
	rt           *Runtime
	mem          *budget // what its instances' memory is charged to
	compiled     wazero.CompiledModule
	pool         chan *instance

	closeOnce sync.Once
	closed    atomic.Bool
	stats     counters
}

// Name returns the hook's name; Digest the sha256 of its module.
func (h *Hook) Name() string   { return h.name }
func (h *Hook) Digest() string { return h.digest }

// Result is a hook's answer. A failed call (Failure not "") never allows.
type Result struct {
	Allow   bool              `json:"allow"`
	Reason  string            `json:"reason,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	// Failure says how the call failed: "timeout", "memory", "trap",
	// "garbage", "busy" or "closed"; "" when the hook answered.
	Failure string `json:"-"`
}

// Failure kinds.
const (
	FailTimeout = "timeout"
	FailMemory  = "memory"
	FailTrap    = "trap"
	FailGarbage = "garbage"
	FailBusy    = "busy"
	FailClosed  = "closed"
)

// FailureKinds are the kinds of failure, in a fixed order.
var FailureKinds = []string{FailTimeout, FailMemory, FailTrap, FailGarbage, FailBusy, FailClosed}

// Evaluate calls the hook with a decision context (JSON). It fails closed:
// a timeout, a trap, running out of memory or an answer that is not
// {allow, reason?, headers?} yields Allow false, a Failure and a reason
// naming the hook.
func (h *Hook) Evaluate(ctx context.Context, input []byte) Result {
	if h.closed.Load() {
		return h.fail(FailClosed, "the hook was unloaded")
	}
	// The wait for a free instance is bounded too: if failed instances
	// could not be replaced, a check must still answer.
	var inst *instance
	select {
	case inst = <-h.pool:
	default:
		wait := time.NewTimer(h.rt.cfg.Timeout)
		select {
		case inst = <-h.pool:
			wait.Stop()
		case <-ctx.Done():
			wait.Stop()
			return h.fail(FailBusy, "had no free instance before the request ended")
		case <-wait.C:
			return h.fail(FailBusy, fmt.Sprintf("had no free instance within %s", h.rt.cfg.Timeout))
		}
	}
	inst.start(uint64(h.rt.cfg.Steps), h.rt.cfg.Timeout)
	if inst.mem != nil {
		inst.mem.refused.Store(false)
	}
	res, err := h.call(ctx, inst, input)
	stopped, exhausted := inst.finish()
	var kind, reason string
	if err != nil {
		kind, reason = h.classify(inst, err, stopped, exhausted)
	}
	if err == nil {
		h.putBack(inst)
		h.stats.calls.Add(1)
		return res
	}
	// A failed instance may be in any state: it is dropped and replaced
	// in the background, so the pool stays full and no request waits for
	// an instantiation.
	h.rt.watch.remove(inst)
	inst.mod.Close(context.Background())
	h.rt.spawn(h.replace)
	return h.fail(kind, reason)
}

// call runs one evaluation: the input is written into a buffer the guest
// allocates, and the answer read back from where the guest says it is.
func (h *Hook) call(ctx context.Context, inst *instance, input []byte) (Result, error) {
	inst.stack[0] = uint64(len(input))
	if err := inst.alloc.CallWithStack(ctx, inst.stack[:]); err != nil {
		return Result{}, err
	}
	ptr := uint32(inst.stack[0])
	mem := inst.mod.Memory()
	if !mem.Write(ptr, input) {
		return Result{}, garbage(fmt.Errorf("warden_alloc(%d) returned %#x, outside its memory", len(input), ptr))
	}
	inst.stack[0], inst.stack[1] = uint64(ptr), uint64(len(input))
	if err := inst.evaluate.CallWithStack(ctx, inst.stack[:]); err != nil {
		return Result{}, err
	}
	outPtr, outLen := uint32(inst.stack[0]>>32), uint32(inst.stack[0])
	if outLen > h.rt.cfg.MaxOutput {
		return Result{}, garbage(fmt.Errorf("its answer of %d bytes is over the limit of %d", outLen, h.rt.cfg.MaxOutput))
	}
	out, ok := mem.Read(outPtr, outLen)
	if !ok {
		return Result{}, garbage(fmt.Errorf("its answer at %#x (%d bytes) is outside its memory", outPtr, outLen))
	}
	return decodeResult(out)
}

// The answers of hooks that say only yes or no, decoded without a parser.
var (
	answerAllow = []byte(`{"allow":true}`)
	answerDeny  = []byte(`{"allow":false}`)
)

// decodeResult parses an answer: an object with a boolean allow, an
// optional string reason and optional string headers.
func decodeResult(out []byte) (Result, error) {
	switch {
	case bytes.Equal(out, answerAllow):
		return Result{Allow: true}, nil
	case bytes.Equal(out, answerDeny):
		return Result{}, nil
	}
	var wire struct {
		Allow   *bool             `json:"allow"`
		Reason  string            `json:"reason"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal(out, &wire); err != nil {
		return Result{}, garbage(fmt.Errorf("its answer is not {allow, reason, headers}: %v", err))
	}
	if wire.Allow == nil {
		return Result{}, garbage(errors.New(`its answer has no boolean "allow"`))
	}
	return Result{Allow: *wire.Allow, Reason: wire.Reason, Headers: wire.Headers}, nil
}

type garbageError struct{ error }

func garbage(err error) error { return garbageError{err} }

// classify says how a call failed: stopped when the watchdog stopped it at
// its deadline, exhausted when it used its whole budget of steps.
func (h *Hook) classify(inst *instance, err error, stopped, exhausted bool) (string, string) {
	var g garbageError
	switch {
	case errors.As(err, &g):
		return FailGarbage, "returned garbage: " + g.Error()
	case stopped:
		return FailTimeout, fmt.Sprintf("ran past its deadline of %s", h.rt.cfg.Timeout)
	case exhausted:
		return FailTimeout, fmt.Sprintf("ran past its budget of %d steps", h.rt.cfg.Steps)
	}
	if inst.mem != nil && inst.mem.refused.Load() {
		return FailMemory, fmt.Sprintf("could not grow its memory: the policy hooks' memory total of %s is in use", h.mem)
	}
	// A guest out of memory fails to grow it; Go guests then abort. The
	// memory at the cap tells it apart from other traps.
	if mem := inst.mod.Memory(); mem != nil && mem.Size() >= (h.rt.cfg.MemoryLimitPages-1)*65536 ||
		strings.Contains(err.Error(), "out of memory") {
		return FailMemory, fmt.Sprintf("exceeded its memory cap of %d pages (%d MiB)", h.rt.cfg.MemoryLimitPages, h.rt.cfg.MemoryLimitPages/16)
	}
	msg := err.Error()
	if i := strings.Index(msg, "\n"); i > 0 {
		msg = msg[:i] // the first line; the rest is a wasm stack trace
	}
	return FailTrap, "trapped: " + msg
}

func (h *Hook) fail(kind, reason string) Result {
	h.stats.failures(kind).Add(1)
	return Result{Failure: kind, Reason: fmt.Sprintf("hook %q %s", h.name, reason)}
}

// replace instantiates an instance for one that failed.
func (h *Hook) replace() {
	if h.closed.Load() {
		return
	}
	inst, err := h.instantiate(context.Background())
	if err != nil {
		h.stats.replaceErrors.Add(1)
		// The pool is one short until a later failure tries again;
		// calls still run on the remaining instances.
		return
	}
	h.putBack(inst)
}

// putBack returns an instance to the pool, and closes it there if the hook
// was closed meanwhile: an instance in use, or made by replace, when Close
// drained the pool would otherwise stay, memory and all.
func (h *Hook) putBack(inst *instance) {
	h.pool <- inst
	if h.closed.Load() {
		h.drain(context.Background())
	}
}

// drain closes the instances in the pool.
func (h *Hook) drain(ctx context.Context) {
	for {
		select {
		case inst := <-h.pool:
			h.rt.watch.remove(inst)
			inst.mod.Close(ctx)
		default:
			return
		}
	}
}

// Close releases the hook's instances. Calls after Close fail closed.
func (h *Hook) Close(ctx context.Context) {
	h.closeOnce.Do(func() {
		h.closed.Store(true)
		h.drain(ctx)
		h.compiled.Close(ctx)
	})
}

// counters are a hook's statistics.
type counters struct {
	calls                                           atomic.Int64
	timeouts, memory, traps, garbage, busy, closedC atomic.Int64
	replaceErrors                                   atomic.Int64
}

func (c *counters) failures(kind string) *atomic.Int64 {
	switch kind {
	case FailTimeout:
		return &c.timeouts
	case FailMemory:
		return &c.memory
	case FailTrap:
		return &c.traps
	case FailGarbage:
		return &c.garbage
	case FailBusy:
		return &c.busy
	}
	return &c.closedC
}

// Stats are a hook's counts since it was loaded.
type Stats struct {
	Calls    int64
	Failures map[string]int64
}

// Stats returns the hook's counts.
func (h *Hook) Stats() Stats {
	s := Stats{Calls: h.stats.calls.Load(), Failures: map[string]int64{}}
	for _, k := range FailureKinds {
		if n := h.stats.failures(k).Load(); n > 0 {
			s.Failures[k] = n
		}
	}
	return s
}
