package gemm

import (
	"errors"
	"fmt"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// Sentinel errors. Every error the package and its backends return for bad
// input is an *ArgError wrapping one of them, so errors.Is works.
var (
	// ErrShape reports inconsistent dimensions, strides, group counts or
	// slice lengths.
	ErrShape = errors.New("shape mismatch")
	// ErrScales reports a bad scale slice, layout or granularity.
	ErrScales = errors.New("bad scales")
	// ErrIndices reports bad mIndices or maskedM values.
	ErrIndices = errors.New("bad group indices")
	// ErrUnsupported reports a call or option the backend does not support
	// (see Caps).
	ErrUnsupported = errors.New("unsupported by backend")
)

// ArgError is a bad-argument error: Arg names the argument ("a.ScalesF32",
// "mIndices[130]", ...), Err is the sentinel it wraps.
type ArgError struct {
	Arg string
	Err error
	Msg string
}

// Error returns "gemm: <arg>: <msg> (<sentinel>)".
func (e *ArgError) Error() string {
	return fmt.Sprintf("gemm: %s: %s (%v)", e.Arg, e.Msg, e.Err)
}

// Unwrap returns the sentinel.
func (e *ArgError) Unwrap() error { return e.Err }

func argErr(arg string, sentinel error, format string, args ...any) error {
	return &ArgError{Arg: arg, Err: sentinel, Msg: fmt.Sprintf(format, args...)}
}

// maxElems bounds products of dimensions so that length arithmetic cannot
// overflow int.
const maxElems = 1 << 48

func mulOK(a, b int) bool { return a == 0 || b <= maxElems/a }

// validateFP8 checks one FP8 operand with tensor.FP8Matrix.Check and
// reports its errors as gemm *ArgErrors naming the argument; wantGroups < 0
// accepts any count.
func validateFP8(name string, m *tensor.FP8Matrix, wantGroups int) error {
	if m != nil && m.Groups >= 0 && wantGroups >= 0 && m.NumGroups() != wantGroups {
		return argErr(name+".Groups", ErrShape, "got %d groups, want %d", m.NumGroups(), wantGroups)
	}
	return operandErr(name, m.Check())
}

// operandErr reports an operand's Check error (a *tensor.FieldError) as a
// gemm *ArgError naming the argument and field; nil stays nil.
func operandErr(name string, err error) error {
	if err == nil {
		return nil
	}
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

func validateOut(d *Out, rows, cols int) error {
	if d == nil {
		return argErr("d", ErrShape, "nil output")
	}
	if d.Rows != rows || d.Cols != cols {
		return argErr("d", ErrShape, "shape [%d,%d], want [%d,%d]", d.Rows, d.Cols, rows, cols)
	}
	if d.Stride != 0 && d.Stride < d.Cols {
		return argErr("d.Stride", ErrShape, "stride %d < Cols %d", d.Stride, d.Cols)
	}
	if (d.BF16 == nil) == (d.F32 == nil) {
		return argErr("d", ErrShape, "exactly one of BF16 and F32 must be set")
	}
	st := d.RowStride()
	if !mulOK(rows, st) {
		return argErr("d", ErrShape, "dimensions too large")
	}
	need := 0
	if rows > 0 && cols > 0 {
		need = (rows-1)*st + cols
	}
	if d.BF16 != nil && d.BF16.Len() < need {
		return argErr("d.BF16", ErrShape, "len %d < %d needed", d.BF16.Len(), need)
	}
	if d.F32 != nil && d.F32.Len() < need {
		return argErr("d.F32", ErrShape, "len %d < %d needed", d.F32.Len(), need)
	}
	if d.C != nil && d.C.Len() < need {
		return argErr("d.C", ErrShape, "len %d < %d needed", d.C.Len(), need)
	}
	return nil
}

// ValidateGemmNT checks the arguments of FP8GemmNT: A [M,K] and B [N,K]
// with one group each, equal K, valid scales and D [M,N].
func ValidateGemmNT(a, b *tensor.FP8Matrix, d *Out) error {
	if err := validateFP8("a", a, 1); err != nil {
		return err
	}
	if err := validateFP8("b", b, 1); err != nil {
		return err
	}
	if a.K != b.K {
		return argErr("b.K", ErrShape, "K %d != a.K %d", b.K, a.K)
	}
	return validateOut(d, a.Rows, b.Rows)
}

// ValidateContiguous checks the arguments of GroupedContiguousNT:
// A [M,K] one group, B [G,N,K], D [M,N], mIndices [M] with values in
// [−1, G). Within every 128-row block (the last may be partial) all
// non-negative values are equal and padding (−1) comes last, as DeepGEMM's
// scheduler reads one group per block: a group's segment starts on a
// 128-row boundary and its tail is padded with −1.
func ValidateContiguous(a, b *tensor.FP8Matrix, d *Out, mIndices []int32) error {
	if err := validateFP8("a", a, 1); err != nil {
		return err
	}
	if err := validateFP8("b", b, -1); err != nil {
		return err
	}
	if a.K != b.K {
		return argErr("b.K", ErrShape, "K %d != a.K %d", b.K, a.K)
	}
	if err := validateMIndices(mIndices, a.Rows, b.NumGroups()); err != nil {
		return err
	}
	return validateOut(d, a.Rows, b.Rows)
}

// ValidateMasked checks the arguments of GroupedMaskedNT: A
// [G,Mmax,K], B [G,N,K], D [G·Mmax,N], maskedM [G] with 0 ≤ maskedM[g] ≤
// Mmax, expectedM ≥ 0.
func ValidateMasked(a, b *tensor.FP8Matrix, d *Out, maskedM []int32, expectedM int) error {
	if err := validateFP8("a", a, -1); err != nil {
		return err
	}
	if err := validateFP8("b", b, a.NumGroups()); err != nil {
		return err
	}
	if a.K != b.K {
		return argErr("b.K", ErrShape, "K %d != a.K %d", b.K, a.K)
	}
	if err := validateMaskedM(maskedM, a.NumGroups(), a.Rows); err != nil {
		return err
	}
	if expectedM < 0 {
		return argErr("expectedM", ErrIndices, "negative hint %d", expectedM)
	}
	return validateOut(d, a.NumGroups()*a.Rows, b.Rows)
}

// validateMIndices checks mIndices of a contiguous grouped call with M rows
// and G groups (see ValidateContiguous).
func validateMIndices(mIndices []int32, rows, groups int) error {
	if len(mIndices) != rows {
		return argErr("mIndices", ErrShape, "len %d, want M = %d", len(mIndices), rows)
	}
	g := int32(groups)
	var blockGroup int32
	for i, v := range mIndices {
		if v < -1 || v >= g {
			return argErr(fmt.Sprintf("mIndices[%d]", i), ErrIndices, "group %d outside [-1, %d)", v, g)
		}
		if i%MAlignmentForContiguous() == 0 {
			blockGroup = v
			continue
		}
		switch prev := mIndices[i-1]; {
		case v >= 0 && prev == -1:
			return argErr(fmt.Sprintf("mIndices[%d]", i), ErrIndices, "group %d follows padding (−1) inside its 128-row block", v)
		case v >= 0 && blockGroup >= 0 && v != blockGroup:
			return argErr(fmt.Sprintf("mIndices[%d]", i), ErrIndices, "group %d differs from group %d of its 128-row block", v, blockGroup)
		}
	}
	return nil
}

// validateMaskedM checks maskedM of a masked call with G groups of at most
// Mmax rows (see ValidateMasked).
func validateMaskedM(maskedM []int32, groups, mmax int) error {
	if len(maskedM) != groups {
		return argErr("maskedM", ErrShape, "len %d, want G = %d", len(maskedM), groups)
	}
	for i, v := range maskedM {
		if v < 0 || int(v) > mmax {
			return argErr(fmt.Sprintf("maskedM[%d]", i), ErrIndices, "%d outside [0, Mmax=%d]", v, mmax)
		}
	}
	return nil
}

// ValidateBF16 checks the arguments of BF16GemmNT: A [M,K], B
// [N,K], D [M,N].
func ValidateBF16(a, b *BF16Matrix, d *Out) error {
	if err := validateBF16Matrix("a", a); err != nil {
		return err
	}
	if err := validateBF16Matrix("b", b); err != nil {
		return err
	}
	if a.K != b.K {
		return argErr("b.K", ErrShape, "K %d != a.K %d", b.K, a.K)
	}
	return validateOut(d, a.Rows, b.Rows)
}

// validateBF16Matrix checks one BF16 operand named name.
func validateBF16Matrix(name string, m *BF16Matrix) error {
	if m == nil {
		return argErr(name, ErrShape, "nil matrix")
	}
	if m.Rows < 0 || m.K < 0 {
		return argErr(name, ErrShape, "negative dimensions Rows=%d K=%d", m.Rows, m.K)
	}
	if m.Stride != 0 && m.Stride < m.K {
		return argErr(name+".Stride", ErrShape, "stride %d < K %d", m.Stride, m.K)
	}
	if !mulOK(m.Rows, m.RowStride()) {
		return argErr(name, ErrShape, "dimensions too large")
	}
	if m.Rows > 0 && m.K > 0 {
		need := (m.Rows-1)*m.RowStride() + m.K
		if n := tensor.StorageLen(m.Data); n < need {
			return argErr(name+".Data", ErrShape, "len %d < %d needed", n, need)
		}
	}
	return nil
}

// checkCaps returns an ErrUnsupported *ArgError when the operands or
// output use something caps excludes (scale format, output dtype, C,
// strides, K or N alignment). The front functions call it after
// validation.
func checkCaps(caps Caps, d *Out, k, n int, ops ...*tensor.FP8Matrix) error {
	for _, m := range ops {
		if m == nil {
			continue
		}
		if m.Format == tensor.ScaleF32 && !caps.ScalesF32 || m.Format == tensor.ScaleUE8M0 && !caps.ScalesUE8M0 {
			return argErr("Format", ErrUnsupported, "scale format %v", m.Format)
		}
		if m.Stride != 0 && m.Stride != m.K && !caps.Strided {
			return argErr("Stride", ErrUnsupported, "strided operand")
		}
	}
	if d != nil {
		if d.BF16 != nil && !caps.OutBF16 || d.F32 != nil && !caps.OutF32 {
			return argErr("d", ErrUnsupported, "output dtype")
		}
		if d.C != nil && !caps.Accumulate {
			return argErr("d.C", ErrUnsupported, "accumulation")
		}
		if d.Stride != 0 && d.Stride != d.Cols && !caps.Strided {
			return argErr("d.Stride", ErrUnsupported, "strided output")
		}
	}
	if caps.KAlign > 1 && k%caps.KAlign != 0 {
		return argErr("K", ErrUnsupported, "K=%d not a multiple of %d", k, caps.KAlign)
	}
	if caps.NAlign > 1 && n%caps.NAlign != 0 {
		return argErr("N", ErrUnsupported, "N=%d not a multiple of %d", n, caps.NAlign)
	}
	return nil
}
