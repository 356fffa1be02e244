//go:build race

package checkapi

// raceEnabled says the race detector is on: compiling many WebAssembly
// modules under it is slow.
const raceEnabled = true
