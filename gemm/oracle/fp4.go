package oracle

import (
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// GateFP8FP4 bounds calc_diff of an FP8×FP4 GEMM against the float64
// product of the unquantized inputs: DeepGEMM's QuantConfig.max_diff for
// one FP4 operand (tests/generators.py: 0.01; 0.02 when both are FP4).
// Against the dequantized inputs the FP8 gates (GateDequantized, GateF32)
// apply unchanged.
const GateFP8FP4 = 0.01

// FP4Problem is a quantized FP8×FP4 test problem with its inputs: A per
// token in FP8 (1×128), B per row in FP4 (1×ScaleK), as DeepGEMM's
// generate_normal builds them for QuantConfig (128, ScaleK, FP8 A, FP4 B).
type FP4Problem struct {
	X, Y   []float32           // unquantized A [M,K] and B [N,K]
	A      *tensor.FP8Matrix   // QuantizePerToken(X)
	B      *tensor.FP4Matrix   // QuantizePerTokenFP4(Y, ScaleK)
	DA, DB []float32           // dequantized A and B
	Shape  Shape               // dimensions (K even)
	ScaleK int                 // B's scale granularity along K
	Opt    tensor.QuantOptions // quantizer options (both operands)
}

// NewFP4Problem draws X [M,K] and Y [N,K] (Randn from the seed's
// generator), quantizes X per token to FP8 and Y per row and scaleK
// elements to FP4 with opt, and dequantizes them. It panics if a quantizer
// rejects the shape (negative dimensions, an odd K or a scaleK other than
// 32 or 128: a caller bug).
func NewFP4Problem(seed uint64, s Shape, scaleK int, opt tensor.QuantOptions) *FP4Problem {
	r := testutil.RNG(seed)
	p := &FP4Problem{X: Randn(r, s.M*s.K), Y: Randn(r, s.N*s.K), Shape: s, ScaleK: scaleK, Opt: opt}
	var err error
	if p.A, err = tensor.QuantizePerToken(p.X, s.M, s.K, opt); err != nil {
		panic(err)
	}
	if p.B, err = tensor.QuantizePerTokenFP4(p.Y, s.N, s.K, scaleK, opt); err != nil {
		panic(err)
	}
	p.DA, _ = tensor.Dequantize(p.A)
	p.DB, _ = tensor.DequantizeFP4(p.B)
	return p
}
