// Package policywasm loads, compiles, pools and calls policy hooks compiled
// to WebAssembly, under wazero, with a deadline, a memory cap and
// fail-closed semantics.
//
// A hook is a module that speaks ABI version 1 (docs/hooks.md): it exports
// warden_abi_version, warden_alloc and warden_evaluate, takes the decision
// context as JSON and returns {allow, reason, headers}. A module is compiled
// once, with a compilation cache, and instantiated into a fixed pool when it
// is loaded: no request ever waits for an instantiation. A call that traps,
// runs past its deadline, exceeds the memory cap or answers garbage denies,
// with a reason, and its instance is replaced in the background.
package policywasm
