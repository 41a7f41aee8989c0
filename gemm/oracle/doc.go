// Package oracle holds what checks a gemm backend without the testing
// package: the problem generator of DeepGEMM's tests (BF16-rounded normal
// inputs quantized per token and per block), the float64 products the
// results are compared with, output helpers and the upstream calc_diff
// gates. The conformance suite gemm/gemmtest, the "fireflyer gemm" command
// and the benchmarks use it; the metric itself is calc_diff
// (internal/testutil.CalcDiff).
//
// It sits beside the compute package gemm: it imports gemm and tensor, and
// nothing imports it but checks, the CLI and benchmarks.
package oracle
