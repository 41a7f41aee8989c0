package kernels

import (
	"fmt"
	"strconv"

	"github.com/fireflyer-go/fireflyer/cuda"
	"github.com/fireflyer-go/fireflyer/cuda/jit"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Tile of the simple FP8 GEMM kernel.
const (
	GemmBlockM = 64
	GemmBlockN = 64
	// ScaleBlock is the K (and N) extent of one scale: 1x128 per token for
	// A, 128x128 for B, as DeepGEMM's fp8_gemm_nt (tensor.ScaleBlock).
	ScaleBlock = tensor.ScaleBlock
)

func gemmRequest(bf16 bool) jit.Request {
	out := "0"
	if bf16 {
		out = "1"
	}
	return jit.Request{
		Source:   mustSource("fp8_gemm.cu"),
		Instance: jit.Instance{Name: "fp8_gemm_nt", Args: []string{strconv.Itoa(GemmBlockM), strconv.Itoa(GemmBlockN), out}},
	}
}

// FP8GemmNT describes one FP8 E4M3 block-scaled GEMM in the NT layout:
//
//	D[m, n] = Σ_kb SA[m, kb] · SB[n/128, kb] · Σ_{k in block kb} A[m, k] · B[n, k]
//
// with float32 accumulation. All pointers are device addresses.
//
// Upstream: deepseek-ai/DeepGEMM fp8_gemm_nt (deep_gemm.fp8_gemm_nt) with
// per-token 1x128 scales for A and 128x128 block scales for B.
type FP8GemmNT struct {
	M, N, K int
	A       cuda.DevicePtr // [M, K] E4M3, row stride LDA bytes
	SA      cuda.DevicePtr // float32 scales of A, [M, ceil(K/128)] row-major unless SAStrideM/SAStrideK say otherwise
	B       cuda.DevicePtr // [N, K] E4M3, row stride LDB bytes
	SB      cuda.DevicePtr // [ceil(N/128), ceil(K/128)] float32, row-major
	D       cuda.DevicePtr // [M, N] of Out, row stride LDD elements
	Out     tensor.DType   // tensor.BF16T or tensor.F32
	// Strides; zero means dense (LDA = LDB = K, LDD = N, SAStrideM =
	// ceil(K/128), SAStrideK = 1). SAStrideM = 1, SAStrideK = M reads
	// DeepGEMM's MN-major scale layout.
	LDA, LDB, LDD        int
	SAStrideM, SAStrideK int
	Stream               *cuda.Stream // nil: the legacy default stream
}

// KBlocks returns ceil(K/128), the number of scale blocks along K.
func (p FP8GemmNT) KBlocks() int { return (p.K + ScaleBlock - 1) / ScaleBlock }

// withDefaults fills the zero strides and checks the description. Errors
// wrap tensor.ErrShape or tensor.ErrDType and name the field.
func (p FP8GemmNT) withDefaults() (FP8GemmNT, error) {
	const maxDim = 1<<31 - 1
	if p.M <= 0 || p.N <= 0 || p.K <= 0 || p.M > maxDim || p.N > maxDim || p.K > maxDim {
		return p, fmt.Errorf("%w: FP8GemmNT M, N, K = %d, %d, %d must be positive int32", tensor.ErrShape, p.M, p.N, p.K)
	}
	if p.Out != tensor.BF16T && p.Out != tensor.F32 {
		return p, fmt.Errorf("%w: FP8GemmNT.Out %v must be BF16 or F32", tensor.ErrDType, p.Out)
	}
	if p.LDA == 0 {
		p.LDA = p.K
	}
	if p.LDB == 0 {
		p.LDB = p.K
	}
	if p.LDD == 0 {
		p.LDD = p.N
	}
	if p.SAStrideM == 0 && p.SAStrideK == 0 {
		p.SAStrideM, p.SAStrideK = p.KBlocks(), 1
	}
	switch {
	case p.LDA < p.K || p.LDA > maxDim:
		return p, fmt.Errorf("%w: FP8GemmNT.LDA %d < K %d", tensor.ErrShape, p.LDA, p.K)
	case p.LDB < p.K || p.LDB > maxDim:
		return p, fmt.Errorf("%w: FP8GemmNT.LDB %d < K %d", tensor.ErrShape, p.LDB, p.K)
	case p.LDD < p.N || p.LDD > maxDim:
		return p, fmt.Errorf("%w: FP8GemmNT.LDD %d < N %d", tensor.ErrShape, p.LDD, p.N)
	case p.SAStrideM <= 0 || p.SAStrideK <= 0:
		return p, fmt.Errorf("%w: FP8GemmNT.SAStrideM/SAStrideK %d/%d must be positive", tensor.ErrShape, p.SAStrideM, p.SAStrideK)
	case (p.M+GemmBlockM-1)/GemmBlockM > 65535:
		return p, fmt.Errorf("%w: FP8GemmNT.M %d exceeds %d (grid y limit)", tensor.ErrShape, p.M, 65535*GemmBlockM)
	}
	for _, f := range []struct {
		name string
		p    cuda.DevicePtr
	}{{"A", p.A}, {"SA", p.SA}, {"B", p.B}, {"SB", p.SB}, {"D", p.D}} {
		if f.p == 0 {
			return p, fmt.Errorf("%w: FP8GemmNT.%s is a null device pointer", cuda.ErrInvalid, f.name)
		}
	}
	if p.SA%4 != 0 || p.SB%4 != 0 || p.D%cuda.DevicePtr(p.Out.Size()) != 0 {
		return p, fmt.Errorf("%w: FP8GemmNT.SA/SB/D must be aligned to their element size", cuda.ErrInvalid)
	}
	return p, nil
}

// args packs the kernel parameters in the order of fp8_gemm_nt's
// signature in fp8_gemm.cu.
func (p FP8GemmNT) args() *cuda.Args {
	return new(cuda.Args).Ptr(p.D).Ptr(p.A).Ptr(p.SA).Ptr(p.B).Ptr(p.SB).
		I32(int32(p.M)).I32(int32(p.N)).I32(int32(p.K)).
		I32(int32(p.LDA)).I32(int32(p.LDB)).I32(int32(p.LDD)).
		I32(int32(p.SAStrideM)).I32(int32(p.SAStrideK))
}

func (p FP8GemmNT) launchConfig() cuda.LaunchConfig {
	return cuda.LaunchConfig{
		Grid:   cuda.Dim3{X: uint32((p.N + GemmBlockN - 1) / GemmBlockN), Y: uint32((p.M + GemmBlockM - 1) / GemmBlockM), Z: 1},
		Block:  cuda.Dim3{X: 256, Y: 1, Z: 1},
		Stream: p.Stream,
	}
}

// FP8GemmNT launches the GEMM (asynchronously on p.Stream). The first call
// compiles the kernel (or reads it from the JIT cache).
func (s *Set) FP8GemmNT(p FP8GemmNT) error {
	p, err := p.withDefaults()
	if err != nil {
		return err
	}
	fn, err := s.load(gemmRequest(p.Out == tensor.BF16T))
	if err != nil {
		return err
	}
	return s.ctx.Launch(fn, p.launchConfig(), p.args())
}

// GemmFLOPs returns the floating-point operations of an M x N x K GEMM
// (2MNK), for TFLOPS figures.
func GemmFLOPs(m, n, k int) float64 { return 2 * float64(m) * float64(n) * float64(k) }
