package gemm

import (
	"context"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// FP4Backend is the optional interface of a Backend that runs DeepGEMM's
// FP8×FP4 GEMMs: FP8 E4M3 activations A with per-token 1×128 scales times
// packed FP4 E2M1 weights B (tensor.FP4Matrix) with per-row 1×32 or 1×128
// scales, float32 accumulation, BF16 or float32 D. The front functions
// FP8FP4GemmNT, FP8FP4GroupedContiguousNT and FP8FP4GroupedMaskedNT
// validate the arguments once, check them against Caps (scale formats,
// output dtype, C, strides, K and N alignment) and call these methods only
// with well-formed arguments and N > 0; a method returns ctx's error when
// the context is cancelled. gemm/ref and gemm/cpu implement it.
//
// The function computed is, for every output element,
//
//	D[m,n] = C[m,n] + Σ_k (a[m,k]·sa[m,k/128]) · (b[n,k]·sb[n,k/ScaleK])
//
// accumulated in float32, as SM100's block-scaled MMA (kind::mxf8f6f4)
// applies both scales inside the product.
type FP4Backend interface {
	// FP8FP4GemmNT computes D = C + A·Bᵀ for A [M,K] and B [N,K], D [M,N]:
	// DeepGEMM fp8_fp4_gemm_nt with an FP8 a and an FP4 b.
	FP8FP4GemmNT(ctx context.Context, a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *Out) error
	// FP8FP4GroupedContiguousNT computes D[m,:] = C[m,:] + A[m,:]·B[g]ᵀ
	// for every row with g = mIndices[m] ≥ 0, A [M,K], B [G,N,K], D [M,N]:
	// DeepGEMM m_grouped_fp8_fp4_gemm_nt_contiguous.
	FP8FP4GroupedContiguousNT(ctx context.Context, a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *Out, mIndices []int32) error
	// FP8FP4GroupedMaskedNT computes D[g,m,:] = C[g,m,:] + A[g,m,:]·B[g]ᵀ
	// for m < maskedM[g], A [G,Mmax,K], B [G,N,K], D [G·Mmax,N]; expectedM
	// is a hint: DeepGEMM m_grouped_fp8_fp4_gemm_nt_masked.
	FP8FP4GroupedMaskedNT(ctx context.Context, a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *Out, maskedM []int32, expectedM int) error
}

// fp4Backend returns be as an FP4Backend, or an ErrUnsupported *ArgError.
func fp4Backend(be Backend) (FP4Backend, error) {
	if err := nilBackend(be); err != nil {
		return nil, err
	}
	fb, ok := be.(FP4Backend)
	if !ok {
		return nil, argErr("be", ErrUnsupported, "%s has no FP8×FP4 GEMM", be.Name())
	}
	return fb, nil
}

// validateFP8FP4Operands checks A (per-token FP8, aGroups groups; < 0 any),
// B (FP4, bGroups groups; < 0 any) and their common K.
func validateFP8FP4Operands(a *tensor.FP8Matrix, b *tensor.FP4Matrix, aGroups, bGroups int) error {
	if err := validateFP8("a", a, aGroups); err != nil {
		return err
	}
	if a.ScaleRows != 1 {
		return argErr("a.ScaleRows", ErrScales, "got %d, want 1: the FP8 A of an FP8×FP4 GEMM has per-token 1×128 scales", a.ScaleRows)
	}
	if b != nil && b.Groups >= 0 && bGroups >= 0 && b.NumGroups() != bGroups {
		return argErr("b.Groups", ErrShape, "got %d groups, want %d", b.NumGroups(), bGroups)
	}
	if err := operandErr("b", b.Check()); err != nil {
		return err
	}
	if a.K != b.K {
		return argErr("b.K", ErrShape, "K %d != a.K %d", b.K, a.K)
	}
	return nil
}

// ValidateFP8FP4GemmNT checks the arguments of FP8FP4GemmNT: A [M,K] one
// group with per-token scales, B [N,K] one group (tensor.FP4Matrix.Check),
// equal K and D [M,N]. Errors: *ArgError wrapping ErrShape or ErrScales.
func ValidateFP8FP4GemmNT(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *Out) error {
	if err := validateFP8FP4Operands(a, b, 1, 1); err != nil {
		return err
	}
	return validateOut(d, a.Rows, b.Rows)
}

// ValidateFP8FP4Contiguous checks the arguments of FP8FP4GroupedContiguousNT:
// A [M,K] one group, B [G,N,K], D [M,N] and mIndices as ValidateContiguous
// describes. Errors: *ArgError wrapping ErrShape, ErrScales or ErrIndices.
func ValidateFP8FP4Contiguous(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *Out, mIndices []int32) error {
	if err := validateFP8FP4Operands(a, b, 1, -1); err != nil {
		return err
	}
	if err := validateMIndices(mIndices, a.Rows, b.NumGroups()); err != nil {
		return err
	}
	return validateOut(d, a.Rows, b.Rows)
}

// ValidateFP8FP4Masked checks the arguments of FP8FP4GroupedMaskedNT: A
// [G,Mmax,K], B [G,N,K], D [G·Mmax,N], maskedM [G] with 0 ≤ maskedM[g] ≤
// Mmax, expectedM ≥ 0. Errors: *ArgError wrapping ErrShape, ErrScales or
// ErrIndices.
func ValidateFP8FP4Masked(a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *Out, maskedM []int32, expectedM int) error {
	if err := validateFP8("a", a, -1); err != nil {
		return err
	}
	if err := validateFP8FP4Operands(a, b, -1, a.NumGroups()); err != nil {
		return err
	}
	if err := validateMaskedM(maskedM, a.NumGroups(), a.Rows); err != nil {
		return err
	}
	if expectedM < 0 {
		return argErr("expectedM", ErrIndices, "negative hint %d", expectedM)
	}
	return validateOut(d, a.NumGroups()*a.Rows, b.Rows)
}

// checkCapsFP4 is checkCaps for an FP8×FP4 call: A and D as checkCaps
// checks them, and B's scale format and stride.
func checkCapsFP4(caps Caps, a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *Out) error {
	if b.Format == tensor.ScaleF32 && !caps.ScalesF32 || b.Format == tensor.ScaleUE8M0 && !caps.ScalesUE8M0 {
		return argErr("b.Format", ErrUnsupported, "scale format %v", b.Format)
	}
	if b.Stride != 0 && b.Stride != b.K/2 && !caps.Strided {
		return argErr("b.Stride", ErrUnsupported, "strided operand")
	}
	return checkCaps(caps, d, a.K, b.Rows, a)
}

// FP8FP4GemmNT computes D = C + A·Bᵀ on be for FP8 A [M,K] (per-token 1×128
// scales) and packed FP4 B [N,K] (per-row 1×32 or 1×128 scales), D [M,N] in
// BF16 or float32: the front of DeepGEMM's fp8_fp4_gemm_nt (its FP8×FP4
// case; upstream's FP8 names are aliases of the fp8_fp4 calls, whose A and B
// may each be FP8 or FP4 — here A is FP8 and B is FP4). See FP4Backend for
// the exact function. Errors: *ArgError wrapping ErrShape or ErrScales for
// bad arguments, ErrUnsupported when be is not an FP4Backend (or nil) or
// cannot do what is asked, ctx's error when it is cancelled.
func FP8FP4GemmNT(ctx context.Context, be Backend, a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *Out) error {
	fb, err := fp4Backend(be)
	if err != nil {
		return err
	}
	if err := ValidateFP8FP4GemmNT(a, b, d); err != nil {
		return err
	}
	if err := checkCapsFP4(be.Caps(), a, b, d); err != nil {
		return err
	}
	if d.Cols == 0 {
		return nil
	}
	return fb.FP8FP4GemmNT(ctx, a, b, d)
}

// FP8FP4GroupedContiguousNT computes, on be, D[m,:] = C[m,:] + A[m,:]·B[g]ᵀ
// for every row m with g = mIndices[m] ≥ 0, FP8 A [M,K], FP4 B [G,N,K], D
// [M,N]; rows with −1 are padding, left untouched (zeroed with
// d.ZeroUnused): the front of DeepGEMM's
// m_grouped_fp8_fp4_gemm_nt_contiguous (mIndices layout; mIndices constant
// within every 128-row block, see ValidateContiguous). Errors: *ArgError
// wrapping ErrShape, ErrScales or ErrIndices, ErrUnsupported, ctx's error.
func FP8FP4GroupedContiguousNT(ctx context.Context, be Backend, a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *Out, mIndices []int32) error {
	fb, err := fp4Backend(be)
	if err != nil {
		return err
	}
	if err := ValidateFP8FP4Contiguous(a, b, d, mIndices); err != nil {
		return err
	}
	if err := checkCapsFP4(be.Caps(), a, b, d); err != nil {
		return err
	}
	if d.Cols == 0 {
		return nil
	}
	return fb.FP8FP4GroupedContiguousNT(ctx, a, b, d, mIndices)
}

// FP8FP4GroupedMaskedNT computes, on be, D[g,m,:] = C[g,m,:] + A[g,m,:]·B[g]ᵀ
// for every group g and row m < maskedM[g], FP8 A [G,Mmax,K], FP4 B
// [G,N,K], D [G·Mmax,N]; other rows are left untouched (zeroed with
// d.ZeroUnused) and expectedM is a hint only: the front of DeepGEMM's
// m_grouped_fp8_fp4_gemm_nt_masked. Errors: *ArgError wrapping ErrShape,
// ErrScales or ErrIndices, ErrUnsupported, ctx's error.
func FP8FP4GroupedMaskedNT(ctx context.Context, be Backend, a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *Out, maskedM []int32, expectedM int) error {
	fb, err := fp4Backend(be)
	if err != nil {
		return err
	}
	if err := ValidateFP8FP4Masked(a, b, d, maskedM, expectedM); err != nil {
		return err
	}
	if err := checkCapsFP4(be.Caps(), a, b, d); err != nil {
		return err
	}
	if d.Cols == 0 {
		return nil
	}
	return fb.FP8FP4GroupedMaskedNT(ctx, a, b, d, maskedM, expectedM)
}

// HostFP8FP4 resolves the operands and output of a validated FP8×FP4 call
// to host slices, once per call, for backends that compute on the CPU
// (gemm/ref, gemm/cpu). Errors: as HostFP8.
func HostFP8FP4(backend string, a *tensor.FP8Matrix, b *tensor.FP4Matrix, d *Out) (ah tensor.FP8Host, bh tensor.FP4Host, dh OutHost, err error) {
	if ah, err = a.Host(); err != nil {
		return ah, bh, dh, notHost(backend, "a", err)
	}
	if bh, err = b.Host(); err != nil {
		return ah, bh, dh, notHost(backend, "b", err)
	}
	if dh, err = d.Host(); err != nil {
		return ah, bh, dh, notHost(backend, "d", err)
	}
	return ah, bh, dh, nil
}
