// Package bench holds Warden's benchmarks of the check path. It is a module
// of its own (github.com/wardenauthz/warden/bench), so that what it compares
// Warden with never becomes a dependency of the main module. Run the
// benchmarks with `make bench`; figures are recorded in RESULTS.md.
package bench
