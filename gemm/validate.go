package gemm

import (
	"errors"
	"fmt"
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

// validateFP8 checks one FP8 operand; wantGroups < 0 accepts any count.
func validateFP8(name string, m *FP8Matrix, wantGroups int) error {
	if m == nil {
		return argErr(name, ErrShape, "nil matrix")
	}
	if m.Groups < 0 {
		return argErr(name+".Groups", ErrShape, "negative group count %d", m.Groups)
	}
	g := m.NumGroups()
	if wantGroups >= 0 && g != wantGroups {
		return argErr(name+".Groups", ErrShape, "got %d groups, want %d", g, wantGroups)
	}
	if m.Rows < 0 || m.K < 0 {
		return argErr(name, ErrShape, "negative dimensions Rows=%d K=%d", m.Rows, m.K)
	}
	if m.Stride != 0 && m.Stride < m.K {
		return argErr(name+".Stride", ErrShape, "stride %d < K %d", m.Stride, m.K)
	}
	st := m.RowStride()
	if !mulOK(g, m.Rows) || !mulOK(g*m.Rows, st) || st > maxElems {
		return argErr(name, ErrShape, "dimensions too large")
	}
	rows := g * m.Rows
	if rows > 0 && m.K > 0 {
		need := (rows-1)*st + m.K
		if len(m.Data) < need {
			return argErr(name+".Data", ErrShape, "len %d < %d needed for [%d,%d,%d] stride %d", len(m.Data), need, g, m.Rows, m.K, st)
		}
	}
	if m.ScaleRows != 1 && m.ScaleRows != BlockK {
		return argErr(name+".ScaleRows", ErrScales, "got %d, want 1 (per-token) or 128 (per-block)", m.ScaleRows)
	}
	ns := g * m.ScaleRowsPerGroup() * m.KBlocks()
	switch m.Format {
	case ScaleF32:
		if len(m.ScalesF32) != ns {
			return argErr(name+".ScalesF32", ErrScales, "len %d, want %d ([%d,%d,%d])", len(m.ScalesF32), ns, g, m.ScaleRowsPerGroup(), m.KBlocks())
		}
	case ScaleUE8M0:
		if len(m.ScalesUE8M0) != ns {
			return argErr(name+".ScalesUE8M0", ErrScales, "len %d, want %d ([%d,%d,%d])", len(m.ScalesUE8M0), ns, g, m.ScaleRowsPerGroup(), m.KBlocks())
		}
	default:
		return argErr(name+".Format", ErrScales, "unknown scale format %d", m.Format)
	}
	return nil
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
	if d.BF16 != nil && len(d.BF16) < need {
		return argErr("d.BF16", ErrShape, "len %d < %d needed", len(d.BF16), need)
	}
	if d.F32 != nil && len(d.F32) < need {
		return argErr("d.F32", ErrShape, "len %d < %d needed", len(d.F32), need)
	}
	if d.C != nil && len(d.C) < need {
		return argErr("d.C", ErrShape, "len %d < %d needed", len(d.C), need)
	}
	return nil
}

// ValidateGemmNT checks the arguments of Backend.GemmNT: A [M,K] and B [N,K]
// with one group each, equal K, valid scales and D [M,N].
func ValidateGemmNT(a, b *FP8Matrix, d *Out) error {
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

// ValidateContiguous checks the arguments of Backend.GroupedContiguousNT:
// A [M,K] one group, B [G,N,K], D [M,N], mIndices [M] with values in
// [−1, G). Within every 128-row block (the last may be partial) all
// non-negative values are equal and padding (−1) comes last, as DeepGEMM's
// scheduler reads one group per block: a group's segment starts on a
// 128-row boundary and its tail is padded with −1.
func ValidateContiguous(a, b *FP8Matrix, d *Out, mIndices []int32) error {
	if err := validateFP8("a", a, 1); err != nil {
		return err
	}
	if err := validateFP8("b", b, -1); err != nil {
		return err
	}
	if a.K != b.K {
		return argErr("b.K", ErrShape, "K %d != a.K %d", b.K, a.K)
	}
	if len(mIndices) != a.Rows {
		return argErr("mIndices", ErrShape, "len %d, want M = %d", len(mIndices), a.Rows)
	}
	g := int32(b.NumGroups())
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
	return validateOut(d, a.Rows, b.Rows)
}

// ValidateMasked checks the arguments of Backend.GroupedMaskedNT: A
// [G,Mmax,K], B [G,N,K], D [G·Mmax,N], maskedM [G] with 0 ≤ maskedM[g] ≤
// Mmax, expectedM ≥ 0.
func ValidateMasked(a, b *FP8Matrix, d *Out, maskedM []int32, expectedM int) error {
	if err := validateFP8("a", a, -1); err != nil {
		return err
	}
	if err := validateFP8("b", b, a.NumGroups()); err != nil {
		return err
	}
	if a.K != b.K {
		return argErr("b.K", ErrShape, "K %d != a.K %d", b.K, a.K)
	}
	if len(maskedM) != a.NumGroups() {
		return argErr("maskedM", ErrShape, "len %d, want G = %d", len(maskedM), a.NumGroups())
	}
	for i, v := range maskedM {
		if v < 0 || int(v) > a.Rows {
			return argErr(fmt.Sprintf("maskedM[%d]", i), ErrIndices, "%d outside [0, Mmax=%d]", v, a.Rows)
		}
	}
	if expectedM < 0 {
		return argErr("expectedM", ErrIndices, "negative hint %d", expectedM)
	}
	return validateOut(d, a.NumGroups()*a.Rows, b.Rows)
}

// ValidateBF16 checks the arguments of Backend.BF16GemmNT: A [M,K], B
// [N,K], D [M,N].
func ValidateBF16(a, b *BF16Matrix, d *Out) error {
	for _, x := range []struct {
		name string
		m    *BF16Matrix
	}{{"a", a}, {"b", b}} {
		m := x.m
		if m == nil {
			return argErr(x.name, ErrShape, "nil matrix")
		}
		if m.Rows < 0 || m.K < 0 {
			return argErr(x.name, ErrShape, "negative dimensions Rows=%d K=%d", m.Rows, m.K)
		}
		if m.Stride != 0 && m.Stride < m.K {
			return argErr(x.name+".Stride", ErrShape, "stride %d < K %d", m.Stride, m.K)
		}
		if !mulOK(m.Rows, m.RowStride()) {
			return argErr(x.name, ErrShape, "dimensions too large")
		}
		if m.Rows > 0 && m.K > 0 {
			need := (m.Rows-1)*m.RowStride() + m.K
			if len(m.Data) < need {
				return argErr(x.name+".Data", ErrShape, "len %d < %d needed", len(m.Data), need)
			}
		}
	}
	if a.K != b.K {
		return argErr("b.K", ErrShape, "K %d != a.K %d", b.K, a.K)
	}
	return validateOut(d, a.Rows, b.Rows)
}

// CheckCaps returns an ErrUnsupported *ArgError when the operands or output
// use something caps excludes (scale format, output dtype, C, strides,
// K or N alignment). Backends call it after validation.
func CheckCaps(caps Caps, d *Out, k, n int, ops ...*FP8Matrix) error {
	for _, m := range ops {
		if m == nil {
			continue
		}
		if m.Format == ScaleF32 && !caps.ScalesF32 || m.Format == ScaleUE8M0 && !caps.ScalesUE8M0 {
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
