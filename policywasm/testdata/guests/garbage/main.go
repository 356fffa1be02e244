// A module that speaks the ABI but answers garbage.
package main

import "unsafe"

var buf = make([]byte, 1<<16)

var out = []byte("{allow: yes")

//go:wasmexport warden_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport warden_alloc
func alloc(n int32) int32 { return int32(uintptr(unsafe.Pointer(&buf[0]))) }

//go:wasmexport warden_evaluate
func evaluate(ptr, n int32) int64 {
	return int64(uintptr(unsafe.Pointer(&out[0])))<<32 | int64(len(out))
}

func main() {}
