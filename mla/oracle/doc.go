// Package oracle holds what checks an mla backend without the testing
// package: the decode cases of FlashMLA's dense-decoding test (Case, built
// deterministically into the arguments of mla.Decode with random-permutation
// block tables and NaN in every unused cache slot), the float64 oracle that
// gathers the paged cache and runs a full softmax (Decode), upstream's
// tolerances (Check), and Measure, which times a backend against the
// same-run anchors of internal/anchor. For DeepSeek-V3.2 sparse attention
// it holds the matching pieces: SparseDecodeCase and SparsePrefillCase
// (built as upstream's tests build them, FP8 cache bytes poisoned outside
// the live rows, upstream's invalid index fillers), the float64 oracles
// SparseDecode and SparsePrefill (which decode the FP8 records from their
// bytes on their own), upstream's tolerances (CheckSparseDecode,
// CheckSparsePrefill) and MeasureSparseDecode / MeasureSparsePrefill.
//
// It sits beside the compute package mla: it imports mla and tensor, and is
// used by the conformance suite mla/mlatest, "fireflyer mla check|bench" and
// the benchmarks.
package oracle
