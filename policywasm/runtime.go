package policywasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/wardenauthz/warden/policywasm/abi"
	"github.com/wardenauthz/warden/policywasm/internal/meter"
)

// ABIVersion is the hook ABI this runtime speaks.
const ABIVersion = abi.Version

// Config configures a Runtime. The zero value of each field is its default.
type Config struct {
	// Timeout bounds one call of a hook. Default 50ms: far beyond what a
	// hook on the check path may take, but above the pauses of a Go
	// guest's garbage collector on a busy machine.
	Timeout time.Duration `yaml:"hook-timeout"`
	// MemoryLimitPages caps a hook instance's memory, in 64 KiB pages.
	// Default 512 (32 MiB).
	MemoryLimitPages uint32 `yaml:"hook-memory-pages"`
	// MemoryTotalPages caps the linear memory of all instances of all
	// hooks together, in 64 KiB pages. Default 16384 (1 GiB). A grow past
	// it fails as a grow past MemoryLimitPages does, and an instance whose
	// initial memory does not fit is not made, so loading a hook fails.
	MemoryTotalPages uint32 `yaml:"hook-memory-total-pages"`
	// PoolSize is the number of instances of each hook. Default GOMAXPROCS.
	PoolSize int `yaml:"hook-pool-size"`
	// CacheDir keeps compiled modules across restarts; in memory when "".
	CacheDir string `yaml:"hook-cache-dir"`
	// MaxOutput bounds the size of a hook's answer. Default 64 KiB.
	MaxOutput uint32 `yaml:"-"`
	// Steps bounds one call of a hook in steps (function calls and loop
	// iterations), whatever the clock says. Default 5 million, which a
	// tight loop in a Go guest uses in about 60 ms on a current machine.
	// The deadline is kept by a watchdog goroutine, which cannot run
	// while Go stops the world for a collection; a collection waits for
	// calls in compiled code, so the budget is what bounds a runaway call
	// then.
	Steps uint32 `yaml:"-"`
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("hook-timeout %s must not be negative", c.Timeout))
	}
	if c.MemoryLimitPages > 65536 {
		errs = append(errs, fmt.Errorf("hook-memory-pages %d must be at most 65536 (4 GiB)", c.MemoryLimitPages))
	}
	if c.PoolSize < 0 {
		errs = append(errs, fmt.Errorf("hook-pool-size %d must not be negative", c.PoolSize))
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = 50 * time.Millisecond
	}
	if c.MemoryLimitPages == 0 {
		c.MemoryLimitPages = 512
	}
	if c.MemoryTotalPages == 0 {
		c.MemoryTotalPages = 16384
	}
	if c.PoolSize <= 0 {
		c.PoolSize = runtime.GOMAXPROCS(0)
	}
	if c.MaxOutput == 0 {
		c.MaxOutput = 64 << 10
	}
	if c.Steps == 0 {
		c.Steps = 5_000_000
	}
}

// Runtime compiles and runs hooks. It is safe for concurrent use.
type Runtime struct {
	cfg   Config
	rt    wazero.Runtime
	cache wazero.CompilationCache
	watch *watchdog
	mem   *budget

	// bg tracks background work (replacing failed instances), which
	// Close waits for; closing stops new work.
	bgMu    sync.Mutex
	bg      sync.WaitGroup
	closing bool
}

// spawn runs fn in the background unless the runtime is closing.
func (r *Runtime) spawn(fn func()) {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if r.closing {
		return
	}
	r.bg.Go(fn)
}

// NewRuntime returns a runtime. Close releases it and every hook loaded in
// it.
func NewRuntime(ctx context.Context, cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("policy hook configuration: %w", err)
	}
	cfg.setDefaults()
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(cfg.CacheDir); err != nil {
			return nil, fmt.Errorf("hook compilation cache in %s: %w", cfg.CacheDir, err)
		}
	} else {
		cache = wazero.NewCompilationCache()
	}
	// Calls are bounded by the metering meter.Instrument compiles into
	// every module, not by WithCloseOnContextDone: with it, wazero leaves
	// compiled code for Go at every loop iteration, which makes a Go guest
	// about seven times slower (docs/hooks.md).
	rc := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(false).
		WithMemoryLimitPages(cfg.MemoryLimitPages).
		WithCompilationCache(cache)
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("instantiating WASI: %w", err)
	}
	mem := &budget{limit: uint64(cfg.MemoryTotalPages) << 16}
	return &Runtime{cfg: cfg, rt: rt, cache: cache, watch: startWatchdog(cfg.Timeout), mem: mem}, nil
}

// Close releases the runtime and its hooks.
func (r *Runtime) Close(ctx context.Context) error {
	r.bgMu.Lock()
	r.closing = true
	r.bgMu.Unlock()
	r.bg.Wait()
	r.watch.stop()
	err := r.rt.Close(ctx)
	return errors.Join(err, r.cache.Close(ctx))
}

// Digest is the sha256 of a module, hex-encoded: what hooks are addressed by.
func Digest(wasm []byte) string {
	sum := sha256.Sum256(wasm)
	return hex.EncodeToString(sum[:])
}

// Load compiles a module, checks that it speaks ABIVersion, and fills its
// pool of instances. Compiling a module seen before is served from the
// compilation cache.
func (r *Runtime) Load(ctx context.Context, name string, wasm []byte) (*Hook, error) {
	return r.load(ctx, name, wasm, r.cfg.PoolSize, r.mem)
}

// Check loads a module with one instance and unloads it: it says whether
// Load would take the module, at a fraction of the cost. The instance has
// a budget of its own, of one instance's cap: whether the module is good
// does not depend on what the loaded hooks hold.
func (r *Runtime) Check(ctx context.Context, name string, wasm []byte) error {
	h, err := r.load(ctx, name, wasm, 1, &budget{limit: uint64(r.cfg.MemoryLimitPages) << 16})
	if err != nil {
		return err
	}
	h.Close(ctx)
	return nil
}

func (r *Runtime) load(ctx context.Context, name string, wasm []byte, instances int, mem *budget) (*Hook, error) {
	metered, err := meter.Instrument(wasm)
	if err != nil {
		return nil, fmt.Errorf("hook %q: %w", name, err)
	}
	compiled, err := compileSafely(ctx, r.rt, metered)
	if err != nil {
		return nil, fmt.Errorf("hook %q: compiling: %w", name, err)
	}
	for _, fn := range []string{abi.ExportVersion, abi.ExportAlloc, abi.ExportEvaluate} {
		if _, ok := compiled.ExportedFunctions()[fn]; !ok {
			compiled.Close(ctx)
			return nil, fmt.Errorf("hook %q: the module does not export %s: it does not speak Warden's hook ABI", name, fn)
		}
	}
	h := &Hook{name: name, digest: Digest(wasm), rt: r, mem: mem, compiled: compiled, pool: make(chan *instance, instances)}
	for range instances {
		inst, err := h.instantiate(ctx)
		if err != nil {
			h.Close(ctx)
			return nil, err
		}
		h.pool <- inst
	}
	return h, nil
}

// Usage is what the runtime's hooks hold now.
type Usage struct {
	// Instances counts the live instances of every loaded hook.
	Instances int
	// MemoryBytes is the sum of their linear memories.
	MemoryBytes uint64
	// MemoryLimit is what that sum may reach (Config.MemoryTotalPages).
	MemoryLimit uint64
}

// Usage returns what the runtime's hooks hold now. A closed hook's
// instances are gone from it at once.
func (r *Runtime) Usage() Usage {
	return Usage{Instances: r.watch.count(), MemoryBytes: r.mem.used.Load(), MemoryLimit: r.mem.limit}
}

// compileSafely compiles a module, turning a panic of the compiler into an
// error: a module crafted to crash wazero's validation (the fuzz target
// found one) must be refused, not bring the node down.
func compileSafely(ctx context.Context, rt wazero.Runtime, wasm []byte) (compiled wazero.CompiledModule, err error) {
	defer func() {
		if p := recover(); p != nil {
			compiled, err = nil, fmt.Errorf("the compiler failed on this module (%v)", p)
		}
	}()
	return rt.CompileModule(ctx, wasm)
}

func (h *Hook) instantiate(ctx context.Context) (*instance, error) {
	mc := wazero.NewModuleConfig().WithName("").WithStdout(io.Discard).WithStderr(io.Discard).WithStartFunctions()
	alloc := &allocator{b: h.mem}
	m, err := h.rt.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, alloc), h.compiled, mc)
	if err != nil {
		return nil, fmt.Errorf("hook %q: instantiating: %w", h.name, err)
	}
	if alloc.mem != nil && alloc.mem.overdrawn {
		m.Close(ctx)
		return nil, h.mem.errFull(h.name)
	}
	fuel, ok := m.ExportedGlobal(meter.Export).(api.MutableGlobal)
	if !ok {
		m.Close(ctx)
		return nil, fmt.Errorf("hook %q: the metered module has no budget global", h.name)
	}
	inst := &instance{mod: m, mem: alloc.mem, fuel: fuel, alloc: m.ExportedFunction(abi.ExportAlloc), evaluate: m.ExportedFunction(abi.ExportEvaluate)}
	h.rt.watch.add(inst)
	// Initialization may take longer than a call: a Go guest starts its
	// runtime. It has a hundred calls' time and steps.
	setup := func(what string, fn api.Function) ([]uint64, error) {
		inst.start(uint64(h.rt.cfg.Steps)*100, 100*h.rt.cfg.Timeout)
		v, err := fn.Call(ctx)
		if stopped, _ := inst.finish(); err != nil {
			h.rt.watch.remove(inst)
			m.Close(ctx)
			if inst.mem != nil && inst.mem.refused.Load() {
				return nil, h.mem.errFull(h.name)
			}
			if stopped {
				return nil, fmt.Errorf("hook %q: %s: ran past %s", h.name, what, 100*h.rt.cfg.Timeout)
			}
			return nil, fmt.Errorf("hook %q: %s: %w", h.name, what, err)
		}
		return v, nil
	}
	if init := m.ExportedFunction(abi.ExportInit); init != nil {
		if _, err := setup("initializing", init); err != nil {
			return nil, err
		}
	}
	v, err := setup("asking its ABI version", m.ExportedFunction(abi.ExportVersion))
	if err != nil {
		return nil, err
	}
	if got := int32(uint32(v[0])); got != ABIVersion {
		h.rt.watch.remove(inst)
		m.Close(ctx)
		return nil, fmt.Errorf("hook %q: the module speaks hook ABI version %d; this Warden speaks version %d", h.name, got, ABIVersion)
	}
	return inst, nil
}
