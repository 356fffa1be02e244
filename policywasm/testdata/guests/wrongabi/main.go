// A module that speaks another version of the ABI.
package main

//go:wasmexport warden_abi_version
func abiVersion() int32 { return 2 }

//go:wasmexport warden_alloc
func alloc(n int32) int32 { return 0 }

//go:wasmexport warden_evaluate
func evaluate(ptr, n int32) int64 { return 0 }

func main() {}
