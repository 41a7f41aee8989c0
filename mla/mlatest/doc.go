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
// RunSparse does the same for an mla.SparseBackend (DeepSeek-V3.2 sparse
// attention) on the grids ported from FlashMLA's sparse decoding and sparse
// prefill tests (SparseDecodeGrid, SparsePrefillGrid): topk 2048 at h_q 64
// and 128, page 64 and odd page sizes, −1 padding, duplicated and invalid
// indices, all-invalid rows, s_q > 1, with and without the sink and the
// extra cache. The default grids are small; FIREFLYER_LONG=1 selects the
// long ones.
//
// It imports testing; what checks a decode without it (cases, the oracle,
// the tolerances, Measure) lives in mla/oracle.
package mlatest
