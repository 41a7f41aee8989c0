package gemm

import (
	"context"

	"github.com/fireflyer-go/fireflyer/internal/registry"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Options configures a backend constructed by NewBackend. Each backend
// reads the fields it understands and ignores the rest.
type Options struct {
	// Workers caps the goroutines one call uses (like DeepGEMM's
	// set_num_sms caps the SMs); 0 means GOMAXPROCS. The reference backend
	// is single-threaded and ignores it.
	Workers int
	// Kernels selects a CPU backend's micro-kernel set ("avx512", "avx2",
	// "neon", "go"; "" for the best this machine runs). The reference backend
	// ignores it.
	Kernels string
}

var backends = registry.Registry[Backend, Options]{Kind: "gemm"}

// Register makes a backend constructible by NewBackend and listed by
// Backends. Backend packages call it from init (gemm/ref registers "ref",
// gemm/cpu "cpu"); it panics on an empty or duplicate name.
func Register(name, doc string, probe func() error, newBackend func(Options) (Backend, error)) {
	backends.Register(registry.Entry[Backend, Options]{Name: name, Doc: doc, Probe: probe, New: newBackend})
}

// NewBackend constructs the backend registered under name ("ref", "cpu")
// with opts. The backend's package must be linked in (imported, perhaps
// blank). Errors: one wrapping ErrUnknownBackend for a name nobody
// registered, or the backend's reason for being unavailable here.
func NewBackend(name string, opts Options) (Backend, error) { return backends.New(name, opts) }

// Backends lists the registered backends and whether each can be
// constructed here, sorted by name (for `fireflyer info`).
func Backends() []registry.Status { return backends.List() }

// ErrUnknownBackend is wrapped by NewBackend's error for an unregistered
// name.
var ErrUnknownBackend = registry.ErrUnknown

func nilBackend(be Backend) error {
	if be == nil {
		return argErr("be", ErrUnsupported, "nil backend")
	}
	return nil
}

// FP8GemmNT computes D = C + A·Bᵀ on be for FP8 A [M,K] (per-token 1×128
// scales or per-block 128×128) and B [N,K], D [M,N] in BF16 or float32: the
// front of DeepGEMM's fp8_gemm_nt. It validates the arguments once
// (ValidateGemmNT) and checks them against be.Caps() before be runs.
// Errors: *ArgError wrapping ErrShape or ErrScales for bad arguments,
// ErrUnsupported for what be cannot do (or a nil be), ctx's error when it
// is cancelled.
func FP8GemmNT(ctx context.Context, be Backend, a, b *tensor.FP8Matrix, d *Out) error {
	if err := nilBackend(be); err != nil {
		return err
	}
	if err := ValidateGemmNT(a, b, d); err != nil {
		return err
	}
	if err := checkCaps(be.Caps(), d, a.K, b.Rows, a, b); err != nil {
		return err
	}
	if d.Cols == 0 {
		return nil // N = 0: nothing to write, however many rows
	}
	return be.GemmNT(ctx, a, b, d)
}

// GroupedContiguousNT computes, on be, D[m,:] = C[m,:] + A[m,:]·B[g]ᵀ for
// every row m with g = mIndices[m] ≥ 0, A [M,K], B [G,N,K], D [M,N];
// rows with −1 are padding, left untouched (zeroed with d.ZeroUnused): the
// front of DeepGEMM's m_grouped_fp8_gemm_nt_contiguous. mIndices must be
// constant within every 128-row block (see ValidateContiguous). Errors:
// *ArgError wrapping ErrShape, ErrScales or ErrIndices, ErrUnsupported,
// ctx's error.
func GroupedContiguousNT(ctx context.Context, be Backend, a, b *tensor.FP8Matrix, d *Out, mIndices []int32) error {
	if err := nilBackend(be); err != nil {
		return err
	}
	if err := ValidateContiguous(a, b, d, mIndices); err != nil {
		return err
	}
	caps := be.Caps()
	if !caps.Contiguous {
		return argErr("be", ErrUnsupported, "%s has no contiguous grouped GEMM", be.Name())
	}
	if err := checkCaps(caps, d, a.K, b.Rows, a, b); err != nil {
		return err
	}
	if d.Cols == 0 {
		return nil
	}
	return be.GroupedContiguousNT(ctx, a, b, d, mIndices)
}

// GroupedMaskedNT computes, on be, D[g,m,:] = C[g,m,:] + A[g,m,:]·B[g]ᵀ for
// every group g and row m < maskedM[g], A [G,Mmax,K], B [G,N,K], D
// [G·Mmax,N]; other rows are left untouched (zeroed with d.ZeroUnused) and
// expectedM is a hint only: the front of DeepGEMM's
// m_grouped_fp8_gemm_nt_masked. ep's low-latency FP8 dispatch output
// (ep.LowLatencyResult.FP8) is a valid A. Errors: *ArgError wrapping
// ErrShape, ErrScales or ErrIndices, ErrUnsupported, ctx's error.
func GroupedMaskedNT(ctx context.Context, be Backend, a, b *tensor.FP8Matrix, d *Out, maskedM []int32, expectedM int) error {
	if err := nilBackend(be); err != nil {
		return err
	}
	if err := ValidateMasked(a, b, d, maskedM, expectedM); err != nil {
		return err
	}
	caps := be.Caps()
	if !caps.Masked {
		return argErr("be", ErrUnsupported, "%s has no masked grouped GEMM", be.Name())
	}
	if err := checkCaps(caps, d, a.K, b.Rows, a, b); err != nil {
		return err
	}
	if d.Cols == 0 {
		return nil
	}
	return be.GroupedMaskedNT(ctx, a, b, d, maskedM, expectedM)
}

// BF16GemmNT computes D = C + A·Bᵀ on be for BF16 A [M,K] and B [N,K] with
// float32 accumulation over all of K: the front of DeepGEMM's bf16_gemm_nt.
// Errors: *ArgError wrapping ErrShape, ErrUnsupported, ctx's error.
func BF16GemmNT(ctx context.Context, be Backend, a, b *BF16Matrix, d *Out) error {
	if err := nilBackend(be); err != nil {
		return err
	}
	if err := ValidateBF16(a, b, d); err != nil {
		return err
	}
	caps := be.Caps()
	if !caps.BF16 {
		return argErr("be", ErrUnsupported, "%s has no BF16 GEMM", be.Name())
	}
	if err := checkCaps(caps, d, a.K, b.Rows); err != nil {
		return err
	}
	if (a.Stride != 0 && a.Stride != a.K || b.Stride != 0 && b.Stride != b.K) && !caps.Strided {
		return argErr("Stride", ErrUnsupported, "strided operand")
	}
	if d.Cols == 0 {
		return nil
	}
	return be.BF16GemmNT(ctx, a, b, d)
}
