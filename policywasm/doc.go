// Package policywasm will load, compile, pool and call policy hooks compiled
// to WebAssembly, under wazero, with a deadline, a memory cap and
// fail-closed semantics.
package policywasm
