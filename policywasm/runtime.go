package policywasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/wardenauthz/warden/policywasm/abi"
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
	// PoolSize is the number of instances of each hook. Default GOMAXPROCS.
	PoolSize int `yaml:"hook-pool-size"`
	// CacheDir keeps compiled modules across restarts; in memory when "".
	CacheDir string `yaml:"hook-cache-dir"`
	// MaxOutput bounds the size of a hook's answer. Default 64 KiB.
	MaxOutput uint32 `yaml:"-"`
}

func (c *Config) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = 50 * time.Millisecond
	}
	if c.MemoryLimitPages == 0 {
		c.MemoryLimitPages = 512
	}
	if c.PoolSize <= 0 {
		c.PoolSize = runtime.GOMAXPROCS(0)
	}
	if c.MaxOutput == 0 {
		c.MaxOutput = 64 << 10
	}
}

// Runtime compiles and runs hooks. It is safe for concurrent use.
type Runtime struct {
	cfg   Config
	rt    wazero.Runtime
	cache wazero.CompilationCache
}

// NewRuntime returns a runtime. Close releases it and every hook loaded in
// it.
func NewRuntime(ctx context.Context, cfg Config) (*Runtime, error) {
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
	rc := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(cfg.MemoryLimitPages).
		WithCompilationCache(cache)
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("instantiating WASI: %w", err)
	}
	return &Runtime{cfg: cfg, rt: rt, cache: cache}, nil
}

// Close releases the runtime and its hooks.
func (r *Runtime) Close(ctx context.Context) error {
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
	compiled, err := r.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("hook %q: compiling: %w", name, err)
	}
	for _, fn := range []string{abi.ExportVersion, abi.ExportAlloc, abi.ExportEvaluate} {
		if _, ok := compiled.ExportedFunctions()[fn]; !ok {
			compiled.Close(ctx)
			return nil, fmt.Errorf("hook %q: the module does not export %s: it does not speak Warden's hook ABI", name, fn)
		}
	}
	h := &Hook{name: name, digest: Digest(wasm), rt: r, compiled: compiled, pool: make(chan *instance, r.cfg.PoolSize)}
	for range r.cfg.PoolSize {
		inst, err := h.instantiate(ctx)
		if err != nil {
			h.Close(ctx)
			return nil, err
		}
		h.pool <- inst
	}
	return h, nil
}

func (h *Hook) instantiate(ctx context.Context) (*instance, error) {
	mc := wazero.NewModuleConfig().WithName("").WithStdout(io.Discard).WithStderr(io.Discard).WithStartFunctions()
	m, err := h.rt.rt.InstantiateModule(ctx, h.compiled, mc)
	if err != nil {
		return nil, fmt.Errorf("hook %q: instantiating: %w", h.name, err)
	}
	inst := &instance{mod: m, alloc: m.ExportedFunction(abi.ExportAlloc), evaluate: m.ExportedFunction(abi.ExportEvaluate)}
	if init := m.ExportedFunction(abi.ExportInit); init != nil {
		if _, err := init.Call(ctx); err != nil {
			m.Close(ctx)
			return nil, fmt.Errorf("hook %q: initializing: %w", h.name, err)
		}
	}
	v, err := m.ExportedFunction(abi.ExportVersion).Call(ctx)
	if err != nil {
		m.Close(ctx)
		return nil, fmt.Errorf("hook %q: asking its ABI version: %w", h.name, err)
	}
	if got := int32(uint32(v[0])); got != ABIVersion {
		m.Close(ctx)
		return nil, fmt.Errorf("hook %q: the module speaks hook ABI version %d; this Warden speaks version %d", h.name, got, ABIVersion)
	}
	return inst, nil
}
