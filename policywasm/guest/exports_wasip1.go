//go:build wasip1

package guest

import (
	"unsafe"

	"github.com/wardenauthz/warden/policywasm/abi"
)

var (
	handler func(*Input) Output
	inBuf   = make([]byte, 4096)
	outBuf  = make([]byte, 0, 1024)
	// input is reused across calls, so a call allocates nothing the hook
	// does not.
	input Input
)

// Handle registers the hook's function. Call it from main's init or from a
// package-level var: the host calls warden_evaluate after initialization.
func Handle(fn func(*Input) Output) { handler = fn }

//go:wasmexport warden_abi_version
func abiVersion() int32 { return abi.Version }

// warden_alloc returns a buffer for the next input; it is reused across
// calls, so a hook allocates nothing per call for its input.
//
//go:wasmexport warden_alloc
func alloc(n int32) int32 {
	if int(n) > cap(inBuf) {
		inBuf = make([]byte, n)
	}
	inBuf = inBuf[:max(n, 1)]
	return int32(uintptr(unsafe.Pointer(&inBuf[0])))
}

//go:wasmexport warden_evaluate
func evaluate(ptr, n int32) int64 {
	out := Output{Reason: "the hook registered no handler"}
	if handler != nil {
		input.raw = inBuf[:n]
		out = handler(&input)
	}
	outBuf = out.AppendJSON(outBuf[:0])
	return int64(uintptr(unsafe.Pointer(&outBuf[0])))<<32 | int64(len(outBuf))
}
