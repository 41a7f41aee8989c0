// Package mlatest is the conformance suite of package mla: the decode test
// grid of FlashMLA's tests/test_flash_mla_dense_decoding.py (random-permutation
// block tables, NaN in every unused cache slot, garbage in unused block-table
// entries, zero-length sequences), a float64 oracle that gathers the cache and
// runs a full softmax, the upstream tolerances, and the determinism checks.
// Every mla.Backend proves itself by passing Run; a backend that lacks a
// feature declares it through Supports (and the case is skipped by name), or
// the caller lists case-name patterns in Options.Skip. Measure, GEMMAnchor
// and MemcpyAnchor time a backend against same-run anchors, as the benchmarks
// and "fireflyer mla bench" report it.
package mlatest
