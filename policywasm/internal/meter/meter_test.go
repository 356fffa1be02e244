package meter

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Modules are assembled by hand from these helpers.

func sec(id byte, body ...byte) []byte {
	return append(appendU32([]byte{id}, uint32(len(body))), body...)
}

func module(sections ...[]byte) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		m = append(m, s...)
	}
	return m
}

func fnBody(code ...byte) []byte { return append(appendU32(nil, uint32(len(code))), code...) }

// counter is a module exporting count(n) = n + g, where g is a defined
// global holding 7. It runs a loop n times, so a call takes n+2 steps:
// the function's entry and n+1 passes through the loop's header.
func counter(withGlobal, withExport bool) []byte {
	code := []byte{
		0x01, 0x01, 0x7f, // one local i32
		0x02, 0x40, // block
		0x03, 0x40, // loop
		0x20, 0x00, 0x45, 0x0d, 0x01, // local.get 0; i32.eqz; br_if 1
		0x20, 0x00, 0x41, 0x01, 0x6b, 0x21, 0x00, // n--
		0x20, 0x01, 0x41, 0x01, 0x6a, 0x21, 0x01, // acc++
		0x0c, 0x00, // br 0
		0x0b, 0x0b, // end loop, end block
		0x20, 0x01, // local.get 1
	}
	if withGlobal {
		code = append(code, 0x23, 0x00, 0x6a) // global.get 0; i32.add
	}
	code = append(code, 0x0b)
	s := [][]byte{
		sec(1, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f),
		sec(3, 0x01, 0x00),
	}
	if withGlobal {
		s = append(s, sec(6, 0x01, 0x7f, 0x01, 0x41, 0x07, 0x0b))
	}
	if withExport {
		s = append(s, sec(7, append(appendName([]byte{0x01}, "count"), 0x00, 0x00)...))
	}
	s = append(s, sec(0, appendName(nil, "a custom section")...))
	s = append(s, sec(10, append([]byte{0x01}, fnBody(code...)...)...))
	return module(s...)
}

func instantiate(t *testing.T, wasm []byte) api.Module {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	t.Cleanup(func() { rt.Close(ctx) })
	metered, err := Instrument(wasm)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(metered, []byte("a custom section")) {
		t.Fatal("a custom section was kept")
	}
	m, err := rt.InstantiateWithConfig(ctx, metered, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatalf("the metered module does not instantiate: %v", err)
	}
	return m
}

// TestBudget: a call gets exactly the steps it is given.
func TestBudget(t *testing.T) {
	for _, tc := range []struct {
		name               string
		withGlobal, export bool
		want               uint64
	}{
		{"global and export sections", true, true, 10 + 7},
		{"no global section", false, true, 10},
		{"no sections to extend", false, false, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := instantiate(t, counter(tc.withGlobal, tc.export))
			fuel, ok := m.ExportedGlobal(Export).(api.MutableGlobal)
			if !ok {
				t.Fatalf("no mutable global %q", Export)
			}
			if !tc.export {
				return // count is not exported; the global is
			}
			count := m.ExportedFunction("count")
			ctx := context.Background()
			fuel.Set(12) // 10 iterations: 12 steps
			got, err := count.Call(ctx, 10)
			if err != nil || got[0] != tc.want {
				t.Fatalf("with 12 steps: %v, %v; want %d", got, err, tc.want)
			}
			if left := fuel.Get(); left != 0 {
				t.Fatalf("%d steps left; want 0", left)
			}
			fuel.Set(11)
			if _, err := count.Call(ctx, 10); err == nil || !strings.Contains(err.Error(), "unreachable") {
				t.Fatalf("with 11 steps: %v; want a trap", err)
			}
			fuel.Set(0)
			if _, err := count.Call(ctx, 0); err == nil {
				t.Fatal("with no steps, the call ran")
			}
		})
	}
}

// TestImportedGlobals: the new global's index follows imported globals.
func TestImportedGlobals(t *testing.T) {
	imp := append(appendName(appendName([]byte{0x03}, "env"), "a"), 0x03, 0x7f, 0x00)
	imp = append(appendName(appendName(imp, "env"), "f"), 0x00, 0x00)
	imp = append(appendName(appendName(imp, "env"), "b"), 0x03, 0x7e, 0x01)
	wasm := module(
		sec(1, 0x01, 0x60, 0x00, 0x00),
		sec(2, imp...),
		sec(6, 0x01, 0x7f, 0x01, 0x41, 0x00, 0x0b),
	)
	out, err := Instrument(wasm)
	if err != nil {
		t.Fatal(err)
	}
	// Two imported globals and one defined: the new one is index 3.
	want := append(appendName([]byte{0x07, 0x0f, 0x01}, Export), 0x03, 0x03)
	if !bytes.HasSuffix(out, want) {
		t.Fatalf("export section not found in % x", out)
	}
	if _, err := wazero.NewRuntime(context.Background()).CompileModule(context.Background(), out); err != nil {
		t.Fatalf("does not compile: %v", err)
	}
}

func TestRefuses(t *testing.T) {
	good := counter(true, true)
	for _, tc := range []struct {
		name string
		wasm []byte
		msg  string
	}{
		{"empty", nil, "not a WebAssembly module"},
		{"text", []byte("(module)"), "not a WebAssembly module"},
		{"version 2", append([]byte("\x00asm\x02\x00\x00\x00"), good[8:]...), "unsupported WebAssembly binary version 2"},
		{"truncated", good[:len(good)-3], "unexpected end of the module"},
		{"unknown section", module(sec(42, 0x00)), "unknown section id 42"},
		{"out of order", module(sec(3, 0x00), sec(1, 0x00)), "section 1 is out of order or repeated"},
		{"repeated", module(sec(1, 0x00), sec(1, 0x00)), "out of order or repeated"},
		{"export taken", module(sec(7, append(appendName([]byte{0x01}, Export), 0x00, 0x00)...)), `already exports "warden_fuel"`},
		{"unknown instruction", module(
			sec(1, 0x01, 0x60, 0x00, 0x00), sec(3, 0x01, 0x00),
			sec(10, append([]byte{0x01}, fnBody(0x00, 0xff, 0x0b)...)...)), "instruction 0xff at byte 1: unsupported instruction"},
		{"body without end", module(
			sec(1, 0x01, 0x60, 0x00, 0x00), sec(3, 0x01, 0x00),
			sec(10, append([]byte{0x01}, fnBody(0x00, 0x01)...)...)), "does not end with end"},
		{"huge vector", module(sec(6, 0xff, 0xff, 0xff, 0xff, 0x07, 0x7f)), "a vector of 2147483647 elements in 1 bytes"},
		{"huge type", module(sec(1, 0x01, 0x60, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00)), "a vector of 4294967295 elements in 1 bytes"},
		{"huge data", module(sec(11, 0x01, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f)), "a vector of 4294967295 elements in 0 bytes"},
		{"huge element", module(sec(9, 0x01, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f)), "a vector of 4294967295 elements in 0 bytes"},
		{"huge table", module(sec(4, 0x01, 0x70, 0x00, 0xff, 0xff, 0xff, 0x3f)), "starts with 134217727 elements, over the limit of 1048576"},
		{"too many locals", module(
			sec(1, 0x01, 0x60, 0x00, 0x00), sec(3, 0x01, 0x00),
			sec(10, append([]byte{0x01}, fnBody(0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x7f, 0x0b)...)...)), "4294967295 locals, over the limit of 50000"},
		{"long LEB", module(sec(6, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01)), "LEB128 number is too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Instrument(tc.wasm); err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v; want an error with %q", err, tc.msg)
			}
		})
	}
}

// FuzzInstrument: Instrument never panics, and what it makes of a module
// wazero accepts, wazero accepts too.
func FuzzInstrument(f *testing.F) {
	f.Add(counter(true, true))
	f.Add(counter(false, false))
	f.Add(module(sec(1, 0x01, 0x60, 0x00, 0x00), sec(3, 0x01, 0x00),
		sec(10, append([]byte{0x01}, fnBody(0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b)...)...)))
	// A start section at function 1 and a data count: not vectors.
	f.Add(module(sec(1, 0x01, 0x60, 0x00, 0x00), sec(3, 0x02, 0x00, 0x00), sec(5, 0x01, 0x00, 0x01), sec(8, 0x01), sec(12, 0x01),
		sec(10, append([]byte{0x02}, append(fnBody(0x00, 0x0b), fnBody(0x00, 0x0b)...)...)...), sec(11, 0x01, 0x01, 0x02, 'h', 'i')))
	if rust, err := os.ReadFile("../../testdata/rust/denyall.wasm"); err == nil {
		f.Add(rust)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	f.Cleanup(func() { rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := Instrument(wasm)
		if err != nil {
			return
		}
		in, inErr := compile(ctx, rt, wasm)
		if inErr != nil {
			return // wazero refuses it, or fails on it (the runtime turns that into an error)
		}
		in.Close(ctx)
		m, err := compile(ctx, rt, out)
		if err != nil {
			t.Fatalf("wazero accepts the module but not its metered form: %v", err)
		}
		m.Close(ctx)
	})
}

// compile is wazero's CompileModule with its panics as errors: some inputs
// crash its validation.
func compile(ctx context.Context, rt wazero.Runtime, wasm []byte) (m wazero.CompiledModule, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("wazero panicked: %v", p)
		}
	}()
	return rt.CompileModule(ctx, wasm)
}

// TestValidModulesKept: sections that are not vectors (start, data count)
// are read as what they are, so modules that wazero instantiates are kept,
// and they instantiate once metered, their start function included.
func TestValidModulesKept(t *testing.T) {
	ctx := context.Background()
	oneType := sec(1, 0x01, 0x60, 0x00, 0x00)
	twoFuncs := sec(3, 0x02, 0x00, 0x00)
	twoBodies := sec(10, append([]byte{0x02}, append(fnBody(0x00, 0x0b), fnBody(0x00, 0x0b)...)...)...)
	for _, tc := range []struct {
		name string
		wasm []byte
	}{
		{"start at function 1", module(oneType, twoFuncs, sec(8, 0x01), twoBodies)},
		{"start at function 0", module(oneType, twoFuncs, sec(8, 0x00), twoBodies)},
		{"a data count and a passive segment", module(oneType, twoFuncs, sec(5, 0x01, 0x00, 0x01), sec(12, 0x01),
			// function 1 copies the passive segment in and drops it
			sec(10, append([]byte{0x02}, append(fnBody(0x00, 0x0b),
				fnBody(0x00, 0x41, 0x00, 0x41, 0x00, 0x41, 0x02, 0xfc, 0x08, 0x00, 0x00, 0xfc, 0x09, 0x00, 0x0b)...)...)...),
			sec(11, 0x01, 0x01, 0x02, 'h', 'i'))},
		{"start and a data count", module(oneType, twoFuncs, sec(5, 0x01, 0x00, 0x01), sec(8, 0x01), sec(12, 0x01),
			sec(10, append([]byte{0x02}, append(fnBody(0x00, 0x0b),
				fnBody(0x00, 0x41, 0x00, 0x41, 0x00, 0x41, 0x02, 0xfc, 0x08, 0x00, 0x00, 0x0b)...)...)...),
			sec(11, 0x01, 0x01, 0x02, 'h', 'i'))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			if _, err := rt.Instantiate(ctx, tc.wasm); err != nil {
				t.Fatalf("wazero refuses the module itself: %v", err)
			}
			out, err := Instrument(tc.wasm)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if _, err := rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName("metered")); err != nil {
				t.Fatalf("the metered module does not instantiate: %v", err)
			}
		})
	}
}

// TestBulkCharge: a bulk operation costs one step per 1<<BulkShift bytes of
// its length, on top of the function's entry.
func TestBulkCharge(t *testing.T) {
	// fill(n): memory.fill(0, 0, n), on a memory of one page.
	wasm := module(
		sec(1, 0x01, 0x60, 0x01, 0x7f, 0x00),
		sec(3, 0x01, 0x00),
		sec(5, 0x01, 0x00, 0x01),
		sec(7, append(appendName([]byte{0x01}, "fill"), 0x00, 0x00)...),
		sec(10, append([]byte{0x01}, fnBody(0x00, 0x41, 0x00, 0x41, 0x00, 0x20, 0x00, 0xfc, 0x0b, 0x00, 0x0b)...)...))
	m := instantiate(t, wasm)
	fuel := m.ExportedGlobal(Export).(api.MutableGlobal)
	fill := m.ExportedFunction("fill")
	ctx := context.Background()
	const n = 4096
	steps := uint64(1 + n>>BulkShift)
	fuel.Set(steps)
	if _, err := fill.Call(ctx, n); err != nil {
		t.Fatalf("with %d steps: %v", steps, err)
	}
	if got := fuel.Get(); got != 0 {
		t.Fatalf("%d steps left, want 0", got)
	}
	fuel.Set(steps - 1)
	if _, err := fill.Call(ctx, n); err == nil {
		t.Fatalf("with %d steps the fill of %d bytes ran", steps-1, n)
	}
	fuel.Set(2)
	if _, err := fill.Call(ctx, 255); err != nil {
		t.Fatalf("a fill under %d bytes costs nothing beyond its entry: %v", 1<<BulkShift, err)
	}
}
