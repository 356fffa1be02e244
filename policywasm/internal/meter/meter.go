// Package meter instruments a WebAssembly module so that the host can stop
// a call that runs too long, without leaving compiled code for the host on
// every loop iteration.
//
// Instrument adds one mutable i32 global, exported as Export, and at the
// entry of every function and the header of every loop a check: when the
// global is 0 the guest traps (unreachable); otherwise it is decremented.
// The host sets the global to a budget before each call, and to 0 to stop a
// call that is past its deadline. Any unbounded execution passes a loop
// header or a function entry unboundedly often, so it consumes the budget.
//
// Only the code, global and export sections change; function, type and
// global indices do not move, so the rest of the module is copied as it is,
// except custom sections, which are dropped.
//
// Instrument also refuses modules whose declared sizes would make the
// compiler allocate far more than the module's own size (a vector of four
// billion elements declared in a few bytes), so that a hostile module is an
// error and not a crash.
package meter

import (
	"errors"
	"fmt"
)

// Export is the name under which the instrumented module exports its budget.
const Export = "warden_fuel"

// StartFuel is the counter's value when a module is instantiated: the
// steps its start function may take. Calls get their own budget.
const StartFuel = 5_000_000

// Section ids.
const (
	secCustom    = 0
	secImport    = 2
	secGlobal    = 6
	secExport    = 7
	secCode      = 10
	secDataCount = 12
	secStart     = 8
	secTag       = 13
)

// order is the position a known section must take in a module.
var order = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, secTag: 6, secGlobal: 7, secExport: 8, 8: 9, 9: 10, secDataCount: 11, secCode: 12, 11: 13}

// Instrument returns the metered form of a module. It refuses, with an
// error naming the cause, a module it cannot read: a malformed one, one
// already exporting Export, or one using instructions it does not know.
func Instrument(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly module: no \\0asm header")
	}
	if string(wasm[4:8]) != "\x01\x00\x00\x00" {
		return nil, fmt.Errorf("unsupported WebAssembly binary version %d", wasm[4])
	}
	type section struct {
		id   byte
		body []byte
	}
	var sections []section
	r := reader{b: wasm, off: 8}
	last := 0
	for !r.done() {
		id := r.byte()
		size := r.u32()
		body := r.bytes(int(size))
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, r.err)
		}
		if id != secCustom {
			pos, ok := order[id]
			if !ok {
				return nil, fmt.Errorf("unknown section id %d", id)
			}
			if pos <= last {
				return nil, fmt.Errorf("section %d is out of order or repeated", id)
			}
			last = pos
		}
		sections = append(sections, section{id, body})
	}

	// The new global's index follows the imported and the defined ones.
	var importedGlobals, definedGlobals uint32
	var hasGlobal, hasExport bool
	for _, s := range sections {
		var err error
		switch s.id {
		case secCustom:
		case secImport:
			importedGlobals, err = countImportedGlobals(s.body)
		case secGlobal:
			hasGlobal = true
			definedGlobals, err = vecLen(s.body)
		case secExport:
			hasExport = true
			err = checkExports(s.body)
		default:
			err = checkSizes(s.id, s.body)
		}
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, err)
		}
	}
	fuel := importedGlobals + definedGlobals
	check := fuelCheck(fuel)
	charge := bulkCharge(fuel, fuel+1)

	out := make([]byte, 0, len(wasm)+len(wasm)/8+64)
	out = append(out, wasm[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	// A new global section: (mut i32) initialized to StartFuel, which
	// bounds the module's start function, the one code that runs before
	// the runtime can set the budget.
	// A second one, the scratch bulkCharge keeps a length in.
	newGlobal := append(appendS32([]byte{0x7f, 0x01, 0x41}, StartFuel), 0x0b)
	newGlobal = append(newGlobal, 0x7f, 0x01, 0x41, 0x00, 0x0b)
	// A new export: the name, kind global, the index.
	newExport := appendName(nil, Export)
	newExport = append(newExport, 0x03)
	newExport = appendU32(newExport, fuel)

	emitMissing := func(before int) {
		if !hasGlobal && order[secGlobal] < before {
			emit(secGlobal, appendVec(nil, 0, nil, newGlobal, 2))
			hasGlobal = true
		}
		if !hasExport && order[secExport] < before {
			emit(secExport, appendVec(nil, 0, nil, newExport, 1))
			hasExport = true
		}
	}
	for _, s := range sections {
		if s.id != secCustom {
			emitMissing(order[s.id])
		}
		switch s.id {
		case secCustom:
			// Dropped: names and debugging data, which the runtime
			// does not need.
		case secGlobal:
			n, rest := splitVec(s.body)
			emit(s.id, appendVec(nil, n, rest, newGlobal, 2))
		case secExport:
			n, rest := splitVec(s.body)
			emit(s.id, appendVec(nil, n, rest, newExport, 1))
		case secCode:
			body, err := instrumentCode(s.body, check, charge)
			if err != nil {
				return nil, fmt.Errorf("code section: %w", err)
			}
			emit(s.id, body)
		default:
			emit(s.id, s.body)
		}
	}
	emitMissing(len(order) + 1)
	return out, nil
}

// fuelCheck is the check inserted at function entries and loop headers:
//
//	global.get $fuel; i32.eqz; if; unreachable; end
//	global.get $fuel; i32.const 1; i32.sub; global.set $fuel
func fuelCheck(global uint32) []byte {
	idx := appendU32(nil, global)
	var b []byte
	b = append(append(b, 0x23), idx...)
	b = append(b, 0x45, 0x04, 0x40, 0x00, 0x0b)
	b = append(append(b, 0x23), idx...)
	b = append(b, 0x41, 0x01, 0x6b)
	b = append(append(b, 0x24), idx...)
	return b
}

// BulkShift sets what a bulk operation costs: one step per 1<<BulkShift
// bytes (or table elements) of its length, about the time a step of
// ordinary code takes. Without it, one memory.fill of 32 MiB would cost one
// step, and a loop of them would run for minutes within its budget, while
// a collection waits for it and every check with it.
const BulkShift = 8

// bulk says whether the 0xfc instruction whose sub-opcode starts code
// takes a length on top of the stack: memory.init, memory.copy,
// memory.fill, table.init, table.copy, table.grow and table.fill.
func bulk(code []byte) bool {
	r := reader{b: code}
	switch r.u32() {
	case 8, 10, 11, 12, 14, 15, 17:
		return r.err == nil
	}
	return false
}

// bulkCharge is inserted before a bulk operation: it takes the length n
// off the stack into the scratch global, traps unless the counter holds
// n>>BulkShift steps (emptying it first, so that the runtime tells an
// exhausted budget from another trap), takes them, and puts n back:
//
//	global.set $scratch
//	global.get $fuel; global.get $scratch; i32.const BulkShift; i32.shr_u; i32.lt_u
//	if; i32.const 0; global.set $fuel; unreachable; end
//	global.get $fuel; global.get $scratch; i32.const BulkShift; i32.shr_u; i32.sub; global.set $fuel
//	global.get $scratch
func bulkCharge(fuel, scratch uint32) []byte {
	f, s := appendU32(nil, fuel), appendU32(nil, scratch)
	var b []byte
	b = append(append(b, 0x24), s...)
	cost := func(b []byte) []byte {
		b = append(append(b, 0x23), f...)
		b = append(append(b, 0x23), s...)
		return append(b, 0x41, BulkShift, 0x76)
	}
	b = append(cost(b), 0x49, 0x04, 0x40, 0x41, 0x00, 0x24)
	b = append(append(b, f...), 0x00, 0x0b)
	b = append(cost(b), 0x6b)
	b = append(append(b, 0x24), f...)
	return append(append(b, 0x23), s...)
}

func countImportedGlobals(body []byte) (uint32, error) {
	r := reader{b: body}
	n := r.vec()
	var globals uint32
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0x00: // func: type index
			r.u32()
		case 0x01: // table: reftype, limits
			r.byte()
			r.limits()
		case 0x02: // memory: limits
			r.limits()
		case 0x03: // global: valtype, mutability
			r.valtype()
			r.byte()
			globals++
		case 0x04: // tag: attribute, type index
			r.byte()
			r.u32()
		default:
			return 0, fmt.Errorf("import %d has unknown kind %#x", i, kind)
		}
	}
	if r.err == nil && !r.done() {
		r.err = errors.New("trailing bytes")
	}
	return globals, r.err
}

func checkExports(body []byte) error {
	r := reader{b: body}
	n := r.vec()
	for i := uint32(0); i < n && r.err == nil; i++ {
		if r.name() == Export {
			return fmt.Errorf("the module already exports %q", Export)
		}
		r.byte()
		r.u32()
	}
	return r.err
}

func vecLen(body []byte) (uint32, error) {
	r := reader{b: body}
	n := r.vec()
	return n, r.err
}

// Limits on what a module may declare, beyond its own size.
const (
	maxLocals     = 50_000  // per function
	maxTableElems = 1 << 20 // a table's initial size
)

// checkSizes reads the sections whose declared sizes the compiler
// allocates before reading their contents.
func checkSizes(id byte, body []byte) error {
	r := reader{b: body}
	if id == secStart || id == secDataCount {
		// Not vectors: a function index, a count of data segments.
		r.u32()
		if r.err == nil && !r.done() {
			r.err = errors.New("trailing bytes")
		}
		return r.err
	}
	n := r.vec()
	for i := uint32(0); i < n && r.err == nil; i++ {
		switch id {
		case 1: // type: func params results
			if form := r.byte(); form != 0x60 {
				return fmt.Errorf("type %d has unknown form %#x", i, form)
			}
			for range 2 {
				for k := r.vec(); k > 0 && r.err == nil; k-- {
					r.valtype()
				}
			}
		case 4: // table: reftype limits
			r.valtype()
			if min := r.limits(); min > maxTableElems {
				return fmt.Errorf("table %d starts with %d elements, over the limit of %d", i, min, maxTableElems)
			}
		case 9:
			r.element()
		case 11:
			r.data()
		default:
			return r.err // vectors the compiler reads element by element
		}
	}
	if r.err == nil && !r.done() {
		r.err = errors.New("trailing bytes")
	}
	return r.err
}

// splitVec splits a vector's body into its length and its elements' bytes.
// The body has been read before, so it is well-formed.
func splitVec(body []byte) (uint32, []byte) {
	r := reader{b: body}
	n := r.u32()
	return n, body[r.off:]
}

// appendS32 appends v as a signed LEB128 number.
func appendS32(out []byte, v int32) []byte {
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v == 0 && b&0x40 == 0 || v == -1 && b&0x40 != 0 {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

// appendVec appends a vector of n elements (rest) plus k more (extra).
func appendVec(out []byte, n uint32, rest, extra []byte, k uint32) []byte {
	out = appendU32(out, n+k)
	out = append(out, rest...)
	return append(out, extra...)
}

// instrumentCode inserts check at the entry of every function body and
// after every loop's block type, and charge before every bulk operation.
func instrumentCode(body []byte, check, charge []byte) ([]byte, error) {
	r := reader{b: body}
	n := r.vec()
	out := appendU32(make([]byte, 0, len(body)+len(body)/4), n)
	var fn []byte
	for i := uint32(0); i < n; i++ {
		size := r.u32()
		code := r.bytes(int(size))
		if r.err != nil {
			return nil, fmt.Errorf("function %d: %w", i, r.err)
		}
		var err error
		if fn, err = instrumentFunc(fn[:0], code, check, charge); err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		out = appendU32(out, uint32(len(fn)))
		out = append(out, fn...)
	}
	if !r.done() {
		return nil, errors.New("trailing bytes after the function bodies")
	}
	return out, nil
}

func instrumentFunc(out, code, check, charge []byte) ([]byte, error) {
	r := reader{b: code}
	groups := r.vec()
	var locals uint64
	for i := uint32(0); i < groups && r.err == nil; i++ {
		locals += uint64(r.u32())
		r.valtype()
	}
	if r.err != nil {
		return nil, fmt.Errorf("locals: %w", r.err)
	}
	if locals > maxLocals {
		return nil, fmt.Errorf("%d locals, over the limit of %d", locals, maxLocals)
	}
	out = append(out, code[:r.off]...)
	out = append(out, check...)
	copied := r.off
	for !r.done() {
		at := r.off
		op := r.byte()
		if op == 0xfc && bulk(code[r.off:]) {
			// Charged by its length, before it runs.
			out = append(out, code[copied:at]...)
			out = append(out, charge...)
			copied = at
		}
		if err := r.immediates(op); err != nil {
			return nil, fmt.Errorf("instruction %#x at byte %d: %w", op, at, err)
		}
		if op == 0x03 { // loop: check at its header
			out = append(out, code[copied:r.off]...)
			out = append(out, check...)
			copied = r.off
		}
	}
	out = append(out, code[copied:]...)
	if len(code) == 0 || code[len(code)-1] != 0x0b {
		return nil, errors.New("the body does not end with end")
	}
	return out, nil
}
