package gemm

import (
	"context"
	"errors"
	"fmt"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// This file holds DeepGEMM's training calls: the NN, TN and TT layouts of
// the FP8 and BF16 GEMMs (MN-major operands), the k-grouped weight-gradient
// GEMMs and the m-grouped BF16 GEMMs. Backends provide them through the
// optional TrainingBackend interface.

// BF16MNMatrix is an MN-major BF16 operand: the logical matrix [MN, K]
// stored transposed as [K, MN] row-major; element (mn, k) is
// Data[k*Stride + mn]. It is the "T" side of DeepGEMM's bf16_gemm_{nn,tn,tt}
// and both operands of k_grouped_bf16_gemm_tn_contiguous (A [ΣK, M], B
// [ΣK, N]).
type BF16MNMatrix struct {
	// MN and K are the logical dimensions.
	MN, K int
	// Stride is the element distance between consecutive K rows (≥ MN); 0
	// means MN.
	Stride int
	// Data needs at least (K−1)*Stride + MN elements; host memory is
	// tensor.Host[tensor.BF16](slice).
	Data tensor.Storage[tensor.BF16]
}

// RowStride returns Stride, or MN when Stride is 0.
func (m *BF16MNMatrix) RowStride() int {
	if m.Stride == 0 {
		return m.MN
	}
	return m.Stride
}

// BF16MNHost is a BF16MNMatrix resolved to its host slice.
type BF16MNHost struct {
	*BF16MNMatrix
	Data []tensor.BF16
}

// Host resolves m's storage to a host slice once (no copy). Errors: one
// wrapping tensor.ErrNotHost for storage the CPU cannot address; a nil m is
// ErrShape.
func (m *BF16MNMatrix) Host() (BF16MNHost, error) {
	if m == nil {
		return BF16MNHost{}, argErr("m", ErrShape, "nil matrix")
	}
	d, err := tensor.HostSlice(m.Data)
	if err != nil {
		return BF16MNHost{}, fmt.Errorf("field Data: %w", err)
	}
	return BF16MNHost{BF16MNMatrix: m, Data: d}, nil
}

// TrainingBackend is the optional interface of a Backend that computes
// DeepGEMM's training calls. The front functions of this file (FP8GemmNN,
// FP8GemmTN, FP8GemmTT, the BF16 twins, KGroupedFP8GemmTNContiguous,
// KGroupedFP8GemmNTContiguous, KGroupedBF16GemmTNContiguous,
// MGroupedBF16GemmNTContiguous, MGroupedBF16GemmNTMasked) validate the
// arguments, check them against Caps, skip empty outputs and type-assert
// the backend; a backend without the interface gets ErrUnsupported. Like
// Backend's methods these receive well-formed arguments and return ctx's
// error when it is cancelled. gemm/ref and gemm/cpu implement it.
type TrainingBackend interface {
	Backend
	// FP8GemmNN computes D = C + A·Bᵀ for K-major A [M,K] and MN-major B
	// (logical [N,K], stored [K,N]): DeepGEMM fp8_gemm_nn.
	FP8GemmNN(ctx context.Context, a *tensor.FP8Matrix, b *tensor.FP8MNMatrix, d *Out) error
	// FP8GemmTN computes D = C + A·Bᵀ for MN-major A (stored [K,M]) and B
	// (stored [K,N]): DeepGEMM fp8_gemm_tn.
	FP8GemmTN(ctx context.Context, a, b *tensor.FP8MNMatrix, d *Out) error
	// FP8GemmTT computes D = C + A·Bᵀ for MN-major A (stored [K,M]) and
	// K-major B [N,K]: DeepGEMM fp8_gemm_tt.
	FP8GemmTT(ctx context.Context, a *tensor.FP8MNMatrix, b *tensor.FP8Matrix, d *Out) error
	// BF16GemmNN, BF16GemmTN and BF16GemmTT are the BF16 twins:
	// DeepGEMM bf16_gemm_{nn,tn,tt}.
	BF16GemmNN(ctx context.Context, a *BF16Matrix, b *BF16MNMatrix, d *Out) error
	BF16GemmTN(ctx context.Context, a, b *BF16MNMatrix, d *Out) error
	BF16GemmTT(ctx context.Context, a *BF16MNMatrix, b *BF16Matrix, d *Out) error
	// KGroupedFP8GemmTNContiguous computes D[g] = C[g] + A_gᵀ·B_g over the
	// K ranges ks of A [ΣK,M] and B [ΣK,N] (MN-major, per-channel scales),
	// D [G·M, N] float32: DeepGEMM k_grouped_fp8_gemm_tn_contiguous.
	KGroupedFP8GemmTNContiguous(ctx context.Context, a, b *tensor.FP8MNMatrix, d *Out, ks []int) error
	// KGroupedFP8GemmNTContiguous is the K-major form: group g of A (of B)
	// is an [M, ks[g]] ([N, ks[g]]) row-major block of Data, one after the
	// other; scales [M, ΣK/128] ([N, ΣK/128]): DeepGEMM
	// k_grouped_fp8_gemm_nt_contiguous.
	KGroupedFP8GemmNTContiguous(ctx context.Context, a, b *tensor.FP8Matrix, d *Out, ks []int) error
	// KGroupedBF16GemmTNContiguous is the BF16 twin of
	// KGroupedFP8GemmTNContiguous: DeepGEMM k_grouped_bf16_gemm_tn_contiguous.
	KGroupedBF16GemmTNContiguous(ctx context.Context, a, b *BF16MNMatrix, d *Out, ks []int) error
	// MGroupedBF16GemmNTContiguous computes D[m] = C[m] + A[m]·B[mIndices[m]]ᵀ
	// for A [M,K], B [G·N,K]: DeepGEMM m_grouped_bf16_gemm_nt_contiguous.
	MGroupedBF16GemmNTContiguous(ctx context.Context, a, b *BF16Matrix, d *Out, mIndices []int32) error
	// MGroupedBF16GemmNTMasked computes D[g,m] = C[g,m] + A[g,m]·B[g]ᵀ for
	// m < maskedM[g], A [G·Mmax,K], B [G·N,K]: DeepGEMM
	// m_grouped_bf16_gemm_nt_masked.
	MGroupedBF16GemmNTMasked(ctx context.Context, a, b *BF16Matrix, d *Out, maskedM []int32, expectedM int) error
}

// KGroupAlign is the alignment every group's K must have in the k-grouped
// calls (DeepGEMM's legacy get_mk_alignment_for_contiguous_layout, 128): a
// 128-long scale block never straddles two groups.
const KGroupAlign = 128

func training(be Backend) (TrainingBackend, error) {
	if err := nilBackend(be); err != nil {
		return nil, err
	}
	tb, ok := be.(TrainingBackend)
	if !ok {
		return nil, argErr("be", ErrUnsupported, "%s has no training GEMMs (NN/TN/TT, k-grouped, grouped BF16)", be.Name())
	}
	return tb, nil
}

// fieldArg turns a tensor check error into a gemm *ArgError naming the
// argument.
func fieldArg(name string, err error) error {
	var fe *tensor.FieldError
	if !errors.As(err, &fe) {
		return argErr(name, ErrShape, "%v", err)
	}
	arg, sentinel := name, ErrShape
	if fe.Field != "" {
		arg += "." + fe.Field
	}
	if errors.Is(fe.Err, tensor.ErrScales) {
		sentinel = ErrScales
	}
	return argErr(arg, sentinel, "%s", fe.Msg)
}

func validateFP8MN(name string, m *tensor.FP8MNMatrix) error {
	if err := m.Check(); err != nil {
		return fieldArg(name, err)
	}
	return nil
}

func validateBF16MN(name string, m *BF16MNMatrix) error {
	if m == nil {
		return argErr(name, ErrShape, "nil matrix")
	}
	if m.MN < 0 || m.K < 0 {
		return argErr(name, ErrShape, "negative dimensions MN=%d K=%d", m.MN, m.K)
	}
	if m.Stride != 0 && m.Stride < m.MN {
		return argErr(name+".Stride", ErrShape, "stride %d < MN %d", m.Stride, m.MN)
	}
	if !mulOK(m.K, m.RowStride()) {
		return argErr(name, ErrShape, "dimensions too large")
	}
	if m.MN > 0 && m.K > 0 {
		need := (m.K-1)*m.RowStride() + m.MN
		if n := tensor.StorageLen(m.Data); n < need {
			return argErr(name+".Data", ErrShape, "len %d < %d needed", n, need)
		}
	}
	return nil
}

// operand is what the layout fronts need of any operand: its logical
// [rows, K] shape, validation and the caps it touches.
type operand struct {
	name    string
	rows, k int
	check   func() error
	format  tensor.ScaleFormat
	fp8     bool
	strided bool
}

func fp8K(name string, m *tensor.FP8Matrix) operand {
	o := operand{name: name, check: func() error { return validateFP8(name, m, 1) }, fp8: true}
	if m != nil {
		o.rows, o.k, o.format, o.strided = m.Rows, m.K, m.Format, m.Stride != 0 && m.Stride != m.K
	}
	return o
}

func fp8MN(name string, m *tensor.FP8MNMatrix) operand {
	o := operand{name: name, check: func() error { return validateFP8MN(name, m) }, fp8: true}
	if m != nil {
		o.rows, o.k, o.format, o.strided = m.MN, m.K, m.Format, m.Stride != 0 && m.Stride != m.MN
	}
	return o
}

func bf16K(name string, m *BF16Matrix) operand {
	o := operand{name: name, check: func() error { return validateBF16Matrix(name, m) }}
	if m != nil {
		o.rows, o.k, o.strided = m.Rows, m.K, m.Stride != 0 && m.Stride != m.K
	}
	return o
}

func bf16MN(name string, m *BF16MNMatrix) operand {
	o := operand{name: name, check: func() error { return validateBF16MN(name, m) }}
	if m != nil {
		o.rows, o.k, o.strided = m.MN, m.K, m.Stride != 0 && m.Stride != m.MN
	}
	return o
}

// validatePair checks two operands of D = C + A·Bᵀ with their logical
// shapes A [M,K], B [N,K], and D [outRows, N] (outRows = M unless the call
// says otherwise, < 0 for M).
func validatePair(a, b operand, d *Out, outRows int) error {
	if err := a.check(); err != nil {
		return err
	}
	if err := b.check(); err != nil {
		return err
	}
	if a.k != b.k {
		return argErr(b.name+".K", ErrShape, "K %d != %s.K %d", b.k, a.name, a.k)
	}
	if outRows < 0 {
		outRows = a.rows
	}
	return validateOut(d, outRows, b.rows)
}

// pairCaps checks the operands and d against be's Caps.
func pairCaps(be Backend, d *Out, a, b operand, what string, need bool) error {
	caps := be.Caps()
	if !need {
		return argErr("be", ErrUnsupported, "%s has no %s", be.Name(), what)
	}
	for _, o := range []operand{a, b} {
		if o.fp8 && (o.format == tensor.ScaleF32 && !caps.ScalesF32 || o.format == tensor.ScaleUE8M0 && !caps.ScalesUE8M0) {
			return argErr(o.name+".Format", ErrUnsupported, "scale format %v", o.format)
		}
		if o.strided && !caps.Strided {
			return argErr(o.name+".Stride", ErrUnsupported, "strided operand")
		}
	}
	return checkCaps(caps, d, a.k, b.rows)
}

// layoutCall runs the common front of the dense layout calls.
func layoutCall(be Backend, a, b operand, d *Out, bf16 bool, run func(TrainingBackend) error) error {
	tb, err := training(be)
	if err != nil {
		return err
	}
	if err := validatePair(a, b, d, -1); err != nil {
		return err
	}
	if err := pairCaps(be, d, a, b, "BF16 GEMM", !bf16 || be.Caps().BF16); err != nil {
		return err
	}
	if d.Cols == 0 || d.Rows == 0 {
		return nil
	}
	return run(tb)
}

// FP8GemmNN computes D = C + A·Bᵀ on be for K-major A [M,K] and MN-major B
// (logical [N,K], stored [K,N] with scales [ceil(K/128), ceil(N/ScaleMN)]),
// D [M,N] in BF16 or float32: the front of DeepGEMM fp8_gemm_nn (D = C +
// A·B with B as given, [K,N]; the data-gradient GEMM dX = dY·W). It
// computes exactly what FP8GemmNT computes on tensor.ToKMajor(b). Errors:
// *ArgError wrapping ErrShape or ErrScales for bad arguments,
// ErrUnsupported for a backend without TrainingBackend or what its Caps
// exclude, ctx's error.
func FP8GemmNN(ctx context.Context, be Backend, a *tensor.FP8Matrix, b *tensor.FP8MNMatrix, d *Out) error {
	return layoutCall(be, fp8K("a", a), fp8MN("b", b), d, false, func(tb TrainingBackend) error { return tb.FP8GemmNN(ctx, a, b, d) })
}

// FP8GemmTN computes D = C + A·Bᵀ on be for MN-major A (logical [M,K],
// stored [K,M]) and MN-major B (logical [N,K], stored [K,N]), D [M,N]: the
// front of DeepGEMM fp8_gemm_tn (D = C + Aᵀ·B with A, B as given; the
// weight-gradient GEMM dW = dYᵀ·X). Errors: as FP8GemmNN.
func FP8GemmTN(ctx context.Context, be Backend, a, b *tensor.FP8MNMatrix, d *Out) error {
	return layoutCall(be, fp8MN("a", a), fp8MN("b", b), d, false, func(tb TrainingBackend) error { return tb.FP8GemmTN(ctx, a, b, d) })
}

// FP8GemmTT computes D = C + A·Bᵀ on be for MN-major A (logical [M,K],
// stored [K,M]) and K-major B [N,K], D [M,N]: the front of DeepGEMM
// fp8_gemm_tt (D = C + Aᵀ·Bᵀ with A, B as given). Errors: as FP8GemmNN.
func FP8GemmTT(ctx context.Context, be Backend, a *tensor.FP8MNMatrix, b *tensor.FP8Matrix, d *Out) error {
	return layoutCall(be, fp8MN("a", a), fp8K("b", b), d, false, func(tb TrainingBackend) error { return tb.FP8GemmTT(ctx, a, b, d) })
}

// BF16GemmNN computes D = C + A·Bᵀ on be for BF16 K-major A [M,K] and
// MN-major B (logical [N,K], stored [K,N]) with float32 accumulation over
// all of K: the front of DeepGEMM bf16_gemm_nn. Errors: *ArgError wrapping
// ErrShape, ErrUnsupported, ctx's error.
func BF16GemmNN(ctx context.Context, be Backend, a *BF16Matrix, b *BF16MNMatrix, d *Out) error {
	return layoutCall(be, bf16K("a", a), bf16MN("b", b), d, true, func(tb TrainingBackend) error { return tb.BF16GemmNN(ctx, a, b, d) })
}

// BF16GemmTN computes D = C + A·Bᵀ on be for BF16 MN-major A (stored
// [K,M]) and B (stored [K,N]): the front of DeepGEMM bf16_gemm_tn. Errors:
// as BF16GemmNN.
func BF16GemmTN(ctx context.Context, be Backend, a, b *BF16MNMatrix, d *Out) error {
	return layoutCall(be, bf16MN("a", a), bf16MN("b", b), d, true, func(tb TrainingBackend) error { return tb.BF16GemmTN(ctx, a, b, d) })
}

// BF16GemmTT computes D = C + A·Bᵀ on be for BF16 MN-major A (stored
// [K,M]) and K-major B [N,K]: the front of DeepGEMM bf16_gemm_tt. Errors:
// as BF16GemmNN.
func BF16GemmTT(ctx context.Context, be Backend, a *BF16MNMatrix, b *BF16Matrix, d *Out) error {
	return layoutCall(be, bf16MN("a", a), bf16K("b", b), d, true, func(tb TrainingBackend) error { return tb.BF16GemmTT(ctx, a, b, d) })
}

// validateKs checks the ks list of a k-grouped call: one entry per group,
// each ≥ 0 and a multiple of KGroupAlign, summing to sumK.
func validateKs(ks []int, groups, sumK int) error {
	if len(ks) != groups {
		return argErr("ks", ErrShape, "len %d, want G = %d (d.Rows / M)", len(ks), groups)
	}
	total := 0
	for i, k := range ks {
		if k < 0 || k%KGroupAlign != 0 {
			return argErr(fmt.Sprintf("ks[%d]", i), ErrIndices, "K %d is negative or not a multiple of %d", k, KGroupAlign)
		}
		if k > maxElems-total {
			return argErr(fmt.Sprintf("ks[%d]", i), ErrIndices, "sum of ks overflows")
		}
		total += k
	}
	if total != sumK {
		return argErr("ks", ErrIndices, "sum %d != K %d of the operands", total, sumK)
	}
	return nil
}

// kGroupedCall runs the common front of the k-grouped calls: A [ΣK, M],
// B [ΣK, N] logically transposed (a.rows = M, b.rows = N, k = ΣK), D
// [G·M, N] float32.
func kGroupedCall(be Backend, a, b operand, d *Out, ks []int, bf16 bool, run func(TrainingBackend) error) error {
	tb, err := training(be)
	if err != nil {
		return err
	}
	if d == nil {
		return argErr("d", ErrShape, "nil output")
	}
	if err := a.check(); err != nil {
		return err
	}
	if err := b.check(); err != nil {
		return err
	}
	if a.k != b.k {
		return argErr(b.name+".K", ErrShape, "ΣK %d != %s ΣK %d", b.k, a.name, a.k)
	}
	if err := validateKs(ks, len(ks), a.k); err != nil {
		return err
	}
	if d.F32 == nil {
		return argErr("d.F32", ErrShape, "k-grouped GEMMs write float32 D (d.F32 must be set)")
	}
	if !mulOK(len(ks), a.rows) {
		return argErr("ks", ErrShape, "G·M too large")
	}
	if err := validateOut(d, len(ks)*a.rows, b.rows); err != nil {
		return err
	}
	if err := pairCaps(be, d, a, b, "BF16 GEMM", !bf16 || be.Caps().BF16); err != nil {
		return err
	}
	if d.Cols == 0 || d.Rows == 0 {
		return nil
	}
	return run(tb)
}

// KGroupedFP8GemmTNContiguous computes on be, for every group g,
// D[g] = C[g] + A_gᵀ·B_g, where A_g and B_g are rows [Σ_{h<g} ks[h],
// Σ_{h≤g} ks[h]) of A [ΣK, M] and B [ΣK, N]: the per-expert weight
// gradients of an MoE layer (A the output gradients, B the inputs, K the
// tokens routed to each expert): the front of DeepGEMM
// k_grouped_fp8_gemm_tn_contiguous. A and B are MN-major operands
// (logical [M, ΣK] and [N, ΣK]) with per-channel scales (ScaleMN = 1,
// tensor.QuantizePerChannel, upstream's recipe (1, 1, 128)); D [G·M, N]
// ([G, M, N] flattened) is float32, C optional. Every ks[g] is ≥ 0 and a
// multiple of 128 (KGroupAlign); a group with K = 0 gives D[g] = C[g] (or
// 0). Errors: *ArgError wrapping ErrShape, ErrScales (a ScaleMN other than
// 1) or ErrIndices (bad ks), ErrUnsupported, ctx's error.
func KGroupedFP8GemmTNContiguous(ctx context.Context, be Backend, a, b *tensor.FP8MNMatrix, d *Out, ks []int) error {
	for _, x := range []struct {
		n string
		m *tensor.FP8MNMatrix
	}{{"a", a}, {"b", b}} {
		if x.m != nil && x.m.ScaleMN != 1 {
			return argErr(x.n+".ScaleMN", ErrScales, "k-grouped operands need per-channel scales (ScaleMN 1), got %d", x.m.ScaleMN)
		}
	}
	return kGroupedCall(be, fp8MN("a", a), fp8MN("b", b), d, ks, false, func(tb TrainingBackend) error {
		return tb.KGroupedFP8GemmTNContiguous(ctx, a, b, d, ks)
	})
}

// KGroupedFP8GemmNTContiguous is KGroupedFP8GemmTNContiguous with K-major
// groups (DeepGEMM k_grouped_fp8_gemm_nt_contiguous, the SM90 form): A is
// a tensor.FP8Matrix with Rows = M, K = ΣK, ScaleRows = 1 and Stride 0
// whose Data holds the groups one after the other, group g an [M, ks[g]]
// row-major block starting at element M·Σ_{h<g} ks[h]; its scales are the
// ordinary [M, ΣK/128] layout (row m, K block of the whole ΣK). B likewise
// with N rows. D [G·M, N] float32 gets D[g] = C[g] + A_g·B_gᵀ. Errors: as
// KGroupedFP8GemmTNContiguous, plus ErrShape for a strided or grouped
// operand.
func KGroupedFP8GemmNTContiguous(ctx context.Context, be Backend, a, b *tensor.FP8Matrix, d *Out, ks []int) error {
	for _, x := range []struct {
		n string
		m *tensor.FP8Matrix
	}{{"a", a}, {"b", b}} {
		if x.m == nil {
			continue
		}
		if x.m.ScaleRows != 1 {
			return argErr(x.n+".ScaleRows", ErrScales, "k-grouped operands need per-token scales (ScaleRows 1), got %d", x.m.ScaleRows)
		}
		if x.m.Stride != 0 && x.m.Stride != x.m.K {
			return argErr(x.n+".Stride", ErrShape, "k-grouped NT operands are group-blocked, Stride must be 0")
		}
	}
	return kGroupedCall(be, fp8K("a", a), fp8K("b", b), d, ks, false, func(tb TrainingBackend) error {
		return tb.KGroupedFP8GemmNTContiguous(ctx, a, b, d, ks)
	})
}

// KGroupedBF16GemmTNContiguous computes on be, for every group g, D[g] =
// C[g] + A_gᵀ·B_g for BF16 MN-major A [ΣK, M] and B [ΣK, N] (stored
// shapes) with float32 accumulation, D [G·M, N] float32: the front of
// DeepGEMM k_grouped_bf16_gemm_tn_contiguous. Every ks[g] is ≥ 0 and a
// multiple of 128. Errors: *ArgError wrapping ErrShape or ErrIndices,
// ErrUnsupported, ctx's error.
func KGroupedBF16GemmTNContiguous(ctx context.Context, be Backend, a, b *BF16MNMatrix, d *Out, ks []int) error {
	return kGroupedCall(be, bf16MN("a", a), bf16MN("b", b), d, ks, true, func(tb TrainingBackend) error {
		return tb.KGroupedBF16GemmTNContiguous(ctx, a, b, d, ks)
	})
}

// bGroups returns the group count G of a grouped BF16 B [G·N, K] with N =
// d.Cols.
func bGroups(b *BF16Matrix, d *Out) (int, error) {
	if d.Cols == 0 {
		if b.Rows != 0 {
			return 0, argErr("b.Rows", ErrShape, "%d rows for N = 0", b.Rows)
		}
		return 0, nil
	}
	if b.Rows%d.Cols != 0 {
		return 0, argErr("b.Rows", ErrShape, "%d rows are not G·N for N = d.Cols = %d", b.Rows, d.Cols)
	}
	return b.Rows / d.Cols, nil
}

// MGroupedBF16GemmNTContiguous computes on be D[m,:] = C[m,:] +
// A[m,:]·B[g]ᵀ for every row m with g = mIndices[m] ≥ 0, BF16 A [M,K], B
// [G,N,K] flattened to a BF16Matrix of G·N rows (N = d.Cols), D [M,N]; rows
// with −1 are left untouched (zeroed with d.ZeroUnused, upstream's
// ensure_zero_padding); mIndices is constant within every 128-row block as
// for GroupedContiguousNT: the front of DeepGEMM
// m_grouped_bf16_gemm_nt_contiguous. Errors: *ArgError wrapping ErrShape or
// ErrIndices, ErrUnsupported, ctx's error.
func MGroupedBF16GemmNTContiguous(ctx context.Context, be Backend, a, b *BF16Matrix, d *Out, mIndices []int32) error {
	tb, err := training(be)
	if err != nil {
		return err
	}
	if err := validateBF16Matrix("a", a); err != nil {
		return err
	}
	if err := validateBF16Matrix("b", b); err != nil {
		return err
	}
	if d == nil {
		return argErr("d", ErrShape, "nil output")
	}
	if a.K != b.K {
		return argErr("b.K", ErrShape, "K %d != a.K %d", b.K, a.K)
	}
	g, err := bGroups(b, d)
	if err != nil {
		return err
	}
	if err := validateMIndices(mIndices, a.Rows, g); err != nil {
		return err
	}
	if err := validateOut(d, a.Rows, d.Cols); err != nil {
		return err
	}
	if err := pairCaps(be, d, bf16K("a", a), bf16K("b", b), "BF16 GEMM", be.Caps().BF16 && be.Caps().Contiguous); err != nil {
		return err
	}
	if d.Cols == 0 || d.Rows == 0 {
		return nil
	}
	return tb.MGroupedBF16GemmNTContiguous(ctx, a, b, d, mIndices)
}

// MGroupedBF16GemmNTMasked computes on be D[g,m,:] = C[g,m,:] +
// A[g,m,:]·B[g]ᵀ for every group g = 0..len(maskedM)−1 and row m <
// maskedM[g], BF16 A [G,Mmax,K] flattened to G·Mmax rows, B [G,N,K]
// flattened to G·N rows (N = d.Cols), D [G·Mmax,N]; other rows are left
// untouched (zeroed with d.ZeroUnused) and expectedM is a hint only: the
// front of DeepGEMM m_grouped_bf16_gemm_nt_masked. Errors: *ArgError
// wrapping ErrShape or ErrIndices, ErrUnsupported, ctx's error.
func MGroupedBF16GemmNTMasked(ctx context.Context, be Backend, a, b *BF16Matrix, d *Out, maskedM []int32, expectedM int) error {
	tb, err := training(be)
	if err != nil {
		return err
	}
	if err := validateBF16Matrix("a", a); err != nil {
		return err
	}
	if err := validateBF16Matrix("b", b); err != nil {
		return err
	}
	if d == nil {
		return argErr("d", ErrShape, "nil output")
	}
	if a.K != b.K {
		return argErr("b.K", ErrShape, "K %d != a.K %d", b.K, a.K)
	}
	g := len(maskedM)
	if g == 0 {
		return argErr("maskedM", ErrShape, "no groups")
	}
	if a.Rows%g != 0 {
		return argErr("a.Rows", ErrShape, "%d rows are not G·Mmax for G = %d", a.Rows, g)
	}
	if d.Cols > 0 && b.Rows != g*d.Cols || d.Cols == 0 && b.Rows != 0 {
		return argErr("b.Rows", ErrShape, "%d rows, want G·N = %d·%d", b.Rows, g, d.Cols)
	}
	if err := validateMaskedM(maskedM, g, a.Rows/g); err != nil {
		return err
	}
	if expectedM < 0 {
		return argErr("expectedM", ErrIndices, "negative hint %d", expectedM)
	}
	if err := validateOut(d, a.Rows, d.Cols); err != nil {
		return err
	}
	if err := pairCaps(be, d, bf16K("a", a), bf16K("b", b), "BF16 GEMM", be.Caps().BF16 && be.Caps().Masked); err != nil {
		return err
	}
	if d.Cols == 0 || d.Rows == 0 {
		return nil
	}
	return tb.MGroupedBF16GemmNTMasked(ctx, a, b, d, maskedM, expectedM)
}
