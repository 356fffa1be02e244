// Package bench holds Warden's benchmarks of the check path. Run them with
// `make bench`; figures are recorded in RESULTS.md.
package bench
