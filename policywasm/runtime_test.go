package policywasm

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

const input = `{"request":{"action":"function:get","resource":"/account/acc-1/"},"claims":{"sub":"alice"},"decision":{"allow":true,"status":200}}`

func newRuntime(t *testing.T, cfg Config) *Runtime {
	t.Helper()
	r, err := NewRuntime(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func load(t *testing.T, r *Runtime, name string) *Hook {
	t.Helper()
	h, err := r.Load(context.Background(), name, guestModule(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestAllowingHook(t *testing.T) {
	r := newRuntime(t, Config{PoolSize: 2})
	h := load(t, r, "allow")
	res := h.Evaluate(context.Background(), []byte(input))
	if !res.Allow || res.Failure != "" || res.Reason != "saw function:get" || res.Headers["X-Hook"] != "allow" {
		t.Fatalf("result %+v", res)
	}
	if h.Digest() != Digest(guestModule(t, "allow")) || len(h.Digest()) != 64 {
		t.Fatalf("digest %q", h.Digest())
	}
}

// TestHostileGuests: each misbehaving guest denies with a clear reason, its
// instance is replaced, and the runtime keeps serving other hooks.
func TestHostileGuests(t *testing.T) {
	// The deadline is long enough for the Go runtime to give up on memory
	// (it collects hard first), short enough for the test.
	r := newRuntime(t, Config{PoolSize: 1, Timeout: 2 * time.Second, MemoryLimitPages: 256})
	allow := load(t, r, "allow")
	tests := []struct {
		guest, failure, reason string
	}{
		{"trap", FailTrap, "trapped"},
		{"oom", FailMemory, "exceeded its memory cap of 256 pages (16 MiB)"},
		{"garbage", FailGarbage, "returned garbage: its answer is not {allow, reason, headers}"},
	}
	for _, tc := range tests {
		t.Run(tc.guest, func(t *testing.T) {
			h := load(t, r, tc.guest)
			// Twice: the second call runs on the replacement instance.
			for i := range 2 {
				res := h.Evaluate(context.Background(), []byte(input))
				if res.Allow || res.Failure != tc.failure || !strings.Contains(res.Reason, `hook "`+tc.guest+`" `+tc.reason) {
					t.Fatalf("call %d: %+v; want failure %q with %q", i, res, tc.failure, tc.reason)
				}
				waitFor(t, func() bool { return len(h.pool) == 1 })
			}
			if s := h.Stats(); s.Failures[tc.failure] != 2 {
				t.Fatalf("stats %+v", s)
			}
			if res := allow.Evaluate(context.Background(), []byte(input)); !res.Allow {
				t.Fatalf("the runtime stopped serving: %+v", res)
			}
			h.Close(context.Background())
			if res := h.Evaluate(context.Background(), []byte(input)); res.Allow || res.Failure != FailClosed {
				t.Fatalf("after Close: %+v", res)
			}
		})
	}
}

// TestEndlessGuest: a guest that never answers is stopped at its deadline,
// or when it has used its budget of steps, whichever comes first.
func TestEndlessGuest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		reason string
	}{
		{"deadline", Config{Timeout: 100 * time.Millisecond, Steps: 1<<32 - 1}, "ran past its deadline of 100ms"},
		{"budget", Config{Timeout: time.Minute, Steps: 100_000}, "ran past its budget of 100000 steps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "deadline" {
				// A collection stops the world, which waits for
				// the call in compiled code, and the watchdog with
				// it: the budget bounds the call then. Without
				// collections the watchdog must stop it.
				defer debug.SetGCPercent(debug.SetGCPercent(-1))
			}
			tc.cfg.PoolSize = 1
			r := newRuntime(t, tc.cfg)
			h := load(t, r, "loop")
			allow := load(t, r, "allow")
			for i := range 2 {
				res := h.Evaluate(context.Background(), []byte(input))
				if res.Allow || res.Failure != FailTimeout || !strings.Contains(res.Reason, `hook "loop" `+tc.reason) {
					t.Fatalf("call %d: %+v", i, res)
				}
				waitFor(t, func() bool { return len(h.pool) == 1 })
			}
			if res := allow.Evaluate(context.Background(), []byte(input)); !res.Allow {
				t.Fatalf("the runtime stopped serving: %+v", res)
			}
		})
	}
}

// TestBusyHookAnswers: with every instance taken, a call waits at most the
// hook's deadline, then denies, whatever the request's context.
func TestBusyHookAnswers(t *testing.T) {
	r := newRuntime(t, Config{PoolSize: 1, Timeout: 50 * time.Millisecond})
	h := load(t, r, "allow")
	inst := <-h.pool // as if its replacement had failed
	res := h.Evaluate(context.Background(), []byte(input))
	if res.Allow || res.Failure != FailBusy || !strings.Contains(res.Reason, "had no free instance within 50ms") {
		t.Fatalf("%+v", res)
	}
	h.pool <- inst
	if res := h.Evaluate(context.Background(), []byte(input)); !res.Allow {
		t.Fatalf("after the instance is back: %+v", res)
	}
}

func TestLoadRefusesNonHooks(t *testing.T) {
	r := newRuntime(t, Config{PoolSize: 1})
	for _, tc := range []struct{ guest, msg string }{
		{"wrongabi", "speaks hook ABI version 2; this Warden speaks version 1"},
		{"noabi", "does not export warden_abi_version"},
	} {
		if _, err := r.Load(context.Background(), tc.guest, guestModule(t, tc.guest)); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Fatalf("loading %s: %v", tc.guest, err)
		}
	}
	if _, err := r.Load(context.Background(), "junk", []byte("not wasm")); err == nil || !strings.Contains(err.Error(), `hook "junk": not a WebAssembly module`) {
		t.Fatalf("loading junk: %v", err)
	}
}

// TestHammer: many goroutines share a hook's pool; every call is answered.
func TestHammer(t *testing.T) {
	r := newRuntime(t, Config{PoolSize: 4, Timeout: 5 * time.Second})
	h := load(t, r, "allow")
	const goroutines, calls = 16, 50
	var wg sync.WaitGroup
	errs := make(chan string, goroutines)
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				if res := h.Evaluate(context.Background(), []byte(input)); !res.Allow {
					errs <- res.Reason
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if s := h.Stats(); s.Calls != goroutines*calls {
		t.Fatalf("stats %+v", s)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// TestRustGuest: a hook built by a second toolchain (rustc, no_std, see
// testdata/rust) loads, metered, and answers.
func TestRustGuest(t *testing.T) {
	t.Parallel()
	wasm, err := os.ReadFile("testdata/rust/denyall.wasm")
	if err != nil {
		t.Fatal(err)
	}
	r := newRuntime(t, Config{PoolSize: 1})
	h, err := r.Load(context.Background(), "denyall", wasm)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	if res := h.Evaluate(context.Background(), []byte(`{"request":{"action":"function:get","resource":"/"}}`)); !res.Allow || res.Failure != "" {
		t.Fatalf("function:get: %+v", res)
	}
	if res := h.Evaluate(context.Background(), []byte(`{"request":{"action":"function:put","resource":"/"}}`)); res.Allow || res.Reason != "only function:get" {
		t.Fatalf("function:put: %+v", res)
	}
}

// crashesCompiler is a module, found by FuzzInstrument, that makes wazero
// 1.12's validation panic (an index out of range) instead of refusing it.
const crashesCompiler = "\x00asm\x01\x00\x00\x00\x01\x17\x04`\x00\x01\x7f`\x01\x7f\x01\x7f`\x02\x7f\x7f\x01~`\x03\x7f\x7f\x7f\x01\x7f\x03\x06\x05\x00\x01\x0200\x05\x03\x01\x000\n\xd7\x01\x05\x04\x00A0\v\x12\x00A0Aр\xc00A0\x00A\x80\x800xx\vc\x02\x01~0\x7fB0A0A\x8e\x80\xc00xA0B0A0A0A0xA0B0A0A0A0xA\xba\x80\xc00xA0\x10\x83\x80\x80\x80\x00000000000000000000000000000000000000000000000A0\v\x0e\x00000000000000\vJ\x010\x7f000000000000000000000000000000000000000000000000000000000000000000000A\v"

// TestLoadSurvivesCompilerPanic: a module that crashes the compiler is
// refused with an error; the process goes on.
func TestLoadSurvivesCompilerPanic(t *testing.T) {
	t.Parallel()
	r := newRuntime(t, Config{PoolSize: 1})
	h, err := r.Load(context.Background(), "crash", []byte(crashesCompiler))
	if err == nil {
		h.Close(context.Background())
		t.Fatal("a module that crashes the compiler was loaded")
	}
	if !strings.Contains(err.Error(), "compil") {
		t.Fatalf("error %v", err)
	}
	if err := r.Check(context.Background(), "crash", []byte(crashesCompiler)); err == nil {
		t.Fatal("Check accepted it")
	}
}

// filler is a hook, assembled by hand, whose evaluate fills its whole
// memory (512 pages, 32 MiB) again and again: the most time per step a
// guest can buy, one bulk instruction in a loop.
func filler() []byte {
	sec := func(id byte, body ...byte) []byte {
		return append([]byte{id, byte(len(body))}, body...)
	}
	name := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	var exports []byte
	exports = append(exports, 0x03)
	for i, n := range []string{"warden_abi_version", "warden_alloc", "warden_evaluate"} {
		exports = append(append(exports, name(n)...), 0x00, byte(i))
	}
	fn := func(code ...byte) []byte { return append([]byte{byte(len(code))}, code...) }
	var code []byte
	code = append(code, 0x03)
	code = append(code, fn(0x00, 0x41, 0x01, 0x0b)...)       // version: 1
	code = append(code, fn(0x00, 0x41, 0x80, 0x08, 0x0b)...) // alloc: 1024
	code = append(code, fn(0x00,
		0x03, 0x40, // loop
		0x41, 0x00, 0x41, 0x00, 0x41, 0x80, 0x80, 0x80, 0x08, // 0, 0, 16 MiB
		0xfc, 0x0b, 0x00, // memory.fill
		0x0c, 0x00, // br 0
		0x0b,             // end loop
		0x42, 0x00, 0x0b, // i64.const 0; end
	)...)
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, sec(1, 0x03, 0x60, 0x00, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7e)...)
	m = append(m, sec(3, 0x03, 0x00, 0x01, 0x02)...)
	m = append(m, sec(5, 0x01, 0x00, 0x80, 0x04)...)
	m = append(m, sec(7, exports...)...)
	return append(m, sec(10, code...)...)
}

// TestFillingGuestStopped: the worst guest, one memory.fill of 32 MiB in
// a loop, is stopped near its deadline while garbage collections run:
// the collector waits for compiled code, so the watchdog cannot stop it,
// and only the budget, which charges bulk operations by their length,
// bounds it. Uncharged, it ran for minutes and froze the node.
func TestFillingGuestStopped(t *testing.T) {
	r := newRuntime(t, Config{PoolSize: 1, Timeout: 50 * time.Millisecond})
	h, err := r.Load(context.Background(), "filler", filler())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	start := time.Now()
	res := h.Evaluate(context.Background(), []byte(input))
	took := time.Since(start)
	t.Logf("stopped after %s: %s (%s)", took.Round(time.Millisecond), res.Failure, res.Reason)
	if res.Allow || res.Failure != FailTimeout {
		t.Fatalf("result %+v; want a failure", res)
	}
	// A generous bound, for a busy machine: uncharged, the call ran for
	// minutes.
	if took > 10*time.Second {
		t.Fatalf("the call ran for %s; the deadline is 50ms", took)
	}
}

// TestMemoryTotal: the instances of all hooks share one memory budget. A
// load whose instances do not fit fails naming it, a grow past it fails
// the call as memory, and closing a hook gives its memory back.
func TestMemoryTotal(t *testing.T) {
	probe := newRuntime(t, Config{PoolSize: 1})
	load(t, probe, "allow")
	per := probe.Usage().MemoryBytes
	if per == 0 || probe.Usage().Instances != 1 {
		t.Fatalf("one instance: %+v", probe.Usage())
	}

	// Room for two instances of allow and a few pages, not for a third.
	pages := uint32((2*per)>>16) + 8
	r := newRuntime(t, Config{PoolSize: 1, Timeout: 2 * time.Second, MemoryTotalPages: pages})
	a := load(t, r, "allow")
	load(t, r, "allow")
	if u := r.Usage(); u.MemoryBytes != 2*per || u.MemoryLimit != uint64(pages)<<16 {
		t.Fatalf("two instances: %+v, each %d bytes", u, per)
	}
	_, err := r.Load(context.Background(), "third", guestModule(t, "allow"))
	if err == nil || !strings.Contains(err.Error(), `hook "third": the policy hooks' memory total of`) {
		t.Fatalf("a third instance: %v", err)
	}
	if u := r.Usage(); u.MemoryBytes != 2*per || u.Instances != 2 {
		t.Fatalf("the failed load kept memory: %+v", u)
	}

	a.Close(context.Background())
	if u := r.Usage(); u.MemoryBytes != per || u.Instances != 1 {
		t.Fatalf("after Close: %+v", u)
	}
	// The freed room takes a guest that grows until it is refused: its
	// call fails as memory, naming the total, and gives the memory back.
	oom := load(t, r, "oom")
	res := oom.Evaluate(context.Background(), []byte(input))
	if res.Allow || res.Failure != FailMemory || !strings.Contains(res.Reason, "could not grow its memory: the policy hooks' memory total of") {
		t.Fatalf("growing past the total: %+v", res)
	}
	waitFor(t, func() bool { return len(oom.pool) == 1 })
	if u := r.Usage(); u.MemoryBytes > 2*per+8<<16 || u.Instances != 2 {
		t.Fatalf("after the failed call: %+v", u)
	}
	oom.Close(context.Background())
	if u := r.Usage(); u.MemoryBytes != per {
		t.Fatalf("after closing oom: %+v", u)
	}
}

// TestCheckIgnoresMemoryTotal: whether a module is good does not depend on
// what the loaded hooks hold.
func TestCheckIgnoresMemoryTotal(t *testing.T) {
	r := newRuntime(t, Config{PoolSize: 1, MemoryTotalPages: 1})
	if _, err := r.Load(context.Background(), "allow", guestModule(t, "allow")); err == nil || !strings.Contains(err.Error(), "memory total of 64 KiB is in use") {
		t.Fatalf("Load: %v", err)
	}
	if err := r.Check(context.Background(), "allow", guestModule(t, "allow")); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if u := r.Usage(); u.MemoryBytes != 0 || u.Instances != 0 {
		t.Fatalf("after Check: %+v", u)
	}
}
