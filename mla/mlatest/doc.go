// Package mlatest is the conformance suite of package mla: the decode test
// grid of FlashMLA's tests/test_flash_mla_dense_decoding.py (random-permutation
// block tables, NaN in every unused cache slot, garbage in unused block-table
// entries, zero-length sequences) held to the float64 oracle and upstream
// tolerances of package mla/oracle, and the determinism checks. Every
// mla.Backend proves itself by passing Run; a backend that lacks a feature
// declares it through Supports (and the case is skipped by name), or the
// caller lists case-name patterns in Options.Skip. Run checks a fixed sample
// of the grid (every 97th case and the corners) unless the long mode is asked
// for with FIREFLYER_LONG=1 in the environment (and no -short): then every
// case of the grid runs.
//
// It imports testing; what checks a decode without it (cases, the oracle,
// the tolerances, Measure) lives in mla/oracle.
package mlatest
