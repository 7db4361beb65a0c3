// Package bench holds shipbot's benchmarks, run by `make bench`. They drive
// the real components over loopback and a real bbolt file with fsync on, and
// check that every request they count succeeded; docs/BENCHMARKS.md records
// the figures and the machine they came from.
package bench
