// Package gemmtest is the conformance suite every gemm.Backend runs: the
// same cases, the same oracles and the same upstream thresholds for the
// reference backend and the fast ones (the gonum blas/testblas pattern).
//
// A backend's test calls
//
//	func TestConformance(t *testing.T) { gemmtest.Run(t, mybackend.New(), gemmtest.Options{}) }
//
// A backend that implements gemm.FP4Backend also calls RunFP4 (the
// FP8×FP4 calls, upstream's FP4 gate calc_diff < 0.01 against the
// unquantized product and the FP8 gates against the dequantized one) and
// FuzzFP4.
//
// Cases a backend declares it cannot run (gemm.Caps) are skipped by name,
// with the reason. Gates (DeepGEMM tests/test_core.py, held in
// gemm/oracle): calc_diff(D, float64 product of the
// unquantized inputs) < 1e−3 and calc_diff(D, float64 product of the
// dequantized inputs) < 1e−5; float32 output paths < 1e−6; BF16 GEMM
// < 1e−5. The full dense grid and the large grouped shapes run only in the
// long mode, FIREFLYER_LONG=1 in the environment and no -short (minutes per
// backend under -race); otherwise Run checks a scaled-down grid that keeps
// the odd tails.
//
// Where it sits: a check (docs/architecture.md). It imports testing, so only
// tests import it; the generators, float64 oracles and gates it applies live
// in gemm/oracle, which the CLI and benchmarks use too.
package gemmtest
