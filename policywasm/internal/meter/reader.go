package meter

import (
	"errors"
	"fmt"
)

var errShort = errors.New("unexpected end of the module")

// reader reads a module's bytes. The first error sticks: later reads
// return zero values, so callers check err once after a sequence.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) done() bool { return r.err != nil || r.off >= len(r.b) }

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail(errShort)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail(errShort)
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

// leb reads an LEB128 number of at most maxBytes bytes and returns its
// unsigned value (the low 64 bits).
func (r *reader) leb(maxBytes int) uint64 {
	var v uint64
	for i := 0; i < maxBytes; i++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		if i < 10 {
			v |= uint64(c&0x7f) << (7 * i)
		}
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail(errors.New("an LEB128 number is too long"))
	return 0
}

func (r *reader) u32() uint32 {
	v := r.leb(5)
	if v > 1<<32-1 {
		r.fail(errors.New("a u32 is out of range"))
		return 0
	}
	return uint32(v)
}

// vec reads a vector's length, which cannot exceed the bytes left: every
// element takes at least one.
func (r *reader) vec() uint32 {
	n := r.u32()
	if r.err == nil && int64(n) > int64(len(r.b)-r.off) {
		r.fail(fmt.Errorf("a vector of %d elements in %d bytes", n, len(r.b)-r.off))
		return 0
	}
	return n
}

func (r *reader) name() string {
	n := r.vec()
	return string(r.bytes(int(n)))
}

// limits reads limits and returns the minimum.
func (r *reader) limits() uint64 {
	flags := r.byte()
	if flags > 0x07 {
		r.fail(fmt.Errorf("unknown limits flags %#x", flags))
		return 0
	}
	min := r.leb(10)
	if flags&0x01 != 0 {
		r.leb(10)
	}
	return min
}

// expr skips a constant expression, up to its end.
func (r *reader) expr() {
	for r.err == nil {
		op := r.byte()
		if op == 0x0b {
			return
		}
		if err := r.immediates(op); err != nil {
			r.fail(fmt.Errorf("instruction %#x in a constant expression: %w", op, err))
		}
	}
}

// element reads an element segment, in any of its eight forms.
func (r *reader) element() {
	flags := r.u32()
	if flags > 7 {
		r.fail(fmt.Errorf("unknown element segment form %d", flags))
		return
	}
	if flags&0x02 != 0 && flags&0x01 == 0 { // explicit table index
		r.u32()
	}
	if flags&0x01 == 0 { // active: an offset
		r.expr()
	}
	if flags&0x03 != 0 { // an element kind or a reference type
		r.byte()
	}
	n := r.vec()
	for i := uint32(0); i < n && r.err == nil; i++ {
		if flags&0x04 != 0 {
			r.expr()
		} else {
			r.u32()
		}
	}
}

// data reads a data segment.
func (r *reader) data() {
	switch flags := r.u32(); flags {
	case 0:
		r.expr()
	case 1:
	case 2:
		r.u32()
		r.expr()
	default:
		r.fail(fmt.Errorf("unknown data segment form %d", flags))
		return
	}
	r.bytes(int(r.vec()))
}

// valtype reads a value type: a number, vector or reference type.
func (r *reader) valtype() {
	switch t := r.byte(); t {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
	default:
		r.fail(fmt.Errorf("unsupported value type %#x", t))
	}
}

// blocktype reads a block type: empty, a value type or a type index.
func (r *reader) blocktype() {
	if r.off < len(r.b) {
		switch r.b[r.off] {
		case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
			r.off++
			return
		}
	}
	r.leb(5) // s33 type index
}

// memarg reads an alignment (with a memory index when bit 6 is set) and an
// offset.
func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 {
		r.u32()
	}
	r.leb(10)
}

// immediates skips the immediates of the instruction op.
func (r *reader) immediates(op byte) error {
	switch {
	case op == 0x00, op == 0x01, op == 0x05, op == 0x0a, op == 0x0b, op == 0x0f,
		op == 0x19, op == 0x1a, op == 0x1b, op == 0xd1, op == 0xd3, op == 0xd5,
		op >= 0x45 && op <= 0xc4:
		// No immediates.
	case op >= 0x02 && op <= 0x04, op == 0x06: // block, loop, if, try
		r.blocktype()
	case op == 0x07, op == 0x08, op == 0x09, op == 0x0c, op == 0x0d, op == 0x10,
		op == 0x12, op == 0x14, op == 0x15, op == 0x18, op >= 0x20 && op <= 0x26,
		op == 0x3f, op == 0x40, op == 0xd2, op == 0xd4, op == 0xd6:
		r.u32()
	case op == 0x0e: // br_table
		n := r.vec()
		for i := uint32(0); i <= n && r.err == nil; i++ {
			r.u32()
		}
	case op == 0x11, op == 0x13: // call_indirect, return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		n := r.vec()
		for i := uint32(0); i < n && r.err == nil; i++ {
			r.valtype()
		}
	case op == 0x1f: // try_table
		r.blocktype()
		n := r.vec()
		for i := uint32(0); i < n && r.err == nil; i++ {
			switch kind := r.byte(); kind {
			case 0x00, 0x01:
				r.u32()
				r.u32()
			case 0x02, 0x03:
				r.u32()
			default:
				r.fail(fmt.Errorf("unknown catch kind %#x", kind))
			}
		}
	case op >= 0x28 && op <= 0x3e:
		r.memarg()
	case op == 0x41:
		r.leb(5)
	case op == 0x42:
		r.leb(10)
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xd0: // ref.null heaptype
		r.leb(5)
	case op == 0xfc:
		r.miscImmediates(r.u32())
	case op == 0xfd:
		r.simdImmediates(r.u32())
	case op == 0xfe:
		if sub := r.u32(); sub == 0x03 { // atomic.fence
			r.byte()
		} else {
			r.memarg()
		}
	default:
		return errors.New("unsupported instruction")
	}
	return r.err
}

func (r *reader) miscImmediates(sub uint32) {
	switch {
	case sub <= 7: // saturating truncations
	case sub == 9, sub == 11, sub == 13, sub == 15, sub == 16, sub == 17:
		r.u32()
	case sub == 8, sub == 10, sub == 12, sub == 14:
		r.u32()
		r.u32()
	default:
		r.fail(fmt.Errorf("unsupported instruction 0xfc %d", sub))
	}
}

func (r *reader) simdImmediates(sub uint32) {
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads and stores
		r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // lane accesses
		r.byte()
	case sub >= 84 && sub <= 91: // lane loads and stores
		r.memarg()
		r.byte()
	}
}

func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendName(b []byte, s string) []byte {
	return append(appendU32(b, uint32(len(s))), s...)
}
