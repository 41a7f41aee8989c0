package oracle

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Thresholds, as upstream uses them.
const (
	// GateUnquantized bounds calc_diff against the float64 product of the
	// unquantized inputs (DeepGEMM tests: 0.001).
	GateUnquantized = 1e-3
	// GateDequantized bounds calc_diff against the float64 product of the
	// dequantized inputs; it catches scale-indexing bugs.
	GateDequantized = 1e-5
	// GateF32 bounds calc_diff for float32 outputs against the dequantized
	// float64 product.
	GateF32 = 1e-6
	// GateBF16GEMM bounds calc_diff of the BF16 GEMM (DeepGEMM test_bf16).
	GateBF16GEMM = 1e-5
)

// Shape is one GEMM shape: D [M,N] = A [M,K] · B [N,K]ᵀ.
type Shape struct{ M, N, K int }

// String returns "M=…/N=…/K=…", the sub-test name of the shape.
func (s Shape) String() string { return fmt.Sprintf("M=%d/N=%d/K=%d", s.M, s.N, s.K) }

// Problem is a quantized test problem with its inputs.
type Problem struct {
	X, Y   []float32           // unquantized A [M,K] and B [N,K]
	A, B   *tensor.FP8Matrix   // quantized: A per-token, B per-block
	DA, DB []float32           // dequantized A and B
	Shape  Shape               // dimensions
	Opt    tensor.QuantOptions // quantizer options
}

// Randn returns n values drawn from N(0,1) and rounded to BF16, as
// DeepGEMM's tests feed torch.randn(..., dtype=torch.bfloat16).
func Randn(r *rand.Rand, n int) []float32 {
	x := testutil.Normal(r, n, 0, 1)
	for i, v := range x {
		x[i] = tensor.BF16FromFloat32(v).Float32()
	}
	return x
}

// NewProblem draws X [M,K] and Y [N,K] (Randn from the seed's generator),
// quantizes X per token and Y per block with opt, and dequantizes them. It
// panics only if gemm's quantizers reject a shape with a negative
// dimension (a caller bug).
func NewProblem(seed uint64, s Shape, opt tensor.QuantOptions) *Problem {
	r := testutil.RNG(seed)
	p := &Problem{X: Randn(r, s.M*s.K), Y: Randn(r, s.N*s.K), Shape: s, Opt: opt}
	var err error
	if p.A, err = tensor.QuantizePerToken(p.X, s.M, s.K, opt); err != nil {
		panic(err)
	}
	if p.B, err = tensor.QuantizePerBlock(p.Y, s.N, s.K, opt); err != nil {
		panic(err)
	}
	p.DA, _ = tensor.Dequantize(p.A)
	p.DB, _ = tensor.Dequantize(p.B)
	return p
}

// MatMulNT64 returns the float64 product x [m,k] · y [n,k]ᵀ as [m,n],
// computed on all cores.
func MatMulNT64(x, y []float32, m, n, k int) []float64 {
	out := make([]float64, m*n)
	w := min(runtime.GOMAXPROCS(0), max(m, 1))
	var wg sync.WaitGroup
	for t := 0; t < w; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			xr := make([]float64, k)
			for i := t; i < m; i += w {
				for kk := 0; kk < k; kk++ {
					xr[kk] = float64(x[i*k+kk])
				}
				for j := 0; j < n; j++ {
					yr := y[j*k : (j+1)*k]
					var s0, s1 float64
					kk := 0
					for ; kk+1 < k; kk += 2 {
						s0 += xr[kk] * float64(yr[kk])
						s1 += xr[kk+1] * float64(yr[kk+1])
					}
					if kk < k {
						s0 += xr[kk] * float64(yr[kk])
					}
					out[i*n+j] = s0 + s1
				}
			}
		}(t)
	}
	wg.Wait()
	return out
}

// OutF64 reads D [Rows, Cols] (honouring Stride) as float64. D must be in
// host memory (as NewOut makes it); it panics otherwise.
func OutF64(d *gemm.Out) []float64 {
	h, err := d.Host()
	if err != nil {
		panic(err)
	}
	out := make([]float64, 0, d.Rows*d.Cols)
	for r := 0; r < d.Rows; r++ {
		for c := 0; c < d.Cols; c++ {
			i := r*d.RowStride() + c
			if h.F32 != nil {
				out = append(out, float64(h.F32[i]))
			} else {
				out = append(out, float64(h.BF16[i].Float32()))
			}
		}
	}
	return out
}

// NewOut returns an output [rows, cols] with the given stride (0:
// contiguous), BF16 or float32 in host memory, every element set to fill.
func NewOut(rows, cols, stride int, f32 bool, fill float32) *gemm.Out {
	d := &gemm.Out{Rows: rows, Cols: cols, Stride: stride}
	n := 0
	if rows > 0 {
		n = (rows-1)*d.RowStride() + cols
	}
	if f32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = fill
		}
		d.F32 = tensor.Host[float32](v)
	} else {
		v := make([]tensor.BF16, n)
		for i := range v {
			v[i] = tensor.BF16FromFloat32(fill)
		}
		d.BF16 = tensor.Host[tensor.BF16](v)
	}
	return d
}
