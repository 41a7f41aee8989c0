package tensor

import "fmt"

// ScaleBlock is the width of one FP8 scale block along K (the channel
// dimension) and the promotion interval of the FP8 GEMMs: every 128
// K-elements share one scale (DeepGEMM BLOCK_K, DeepEP's per-token
// quantization granularity, DeepSeek-V3's 128×128 weight blocks).
const ScaleBlock = 128

// ScaleFormat says how an FP8 operand's block scales are stored.
type ScaleFormat uint8

const (
	// ScaleF32 stores each scale as a float32 (DeepGEMM SM90 recipe,
	// DeepSeek-V3 weight_scale_inv).
	ScaleF32 ScaleFormat = iota
	// ScaleUE8M0 stores each scale as one UE8M0 byte, 2^(e−127) (DeepGEMM
	// SM100 recipe), in the same logical shape as ScaleF32.
	ScaleUE8M0
)

// String returns "f32" or "ue8m0".
func (f ScaleFormat) String() string {
	switch f {
	case ScaleF32:
		return "f32"
	case ScaleUE8M0:
		return "ue8m0"
	}
	return "ScaleFormat(?)"
}

// FP8Matrix is the blocked FP8 operand every Fireflyer package exchanges: a
// K-major FP8 E4M3 matrix [Rows, K] or, with Groups > 1, a batch [Groups,
// Rows, K], with block scales. It is what the gemm calls take (A and B of
// DeepGEMM's fp8_gemm_nt and m_grouped_fp8_gemm_nt_*), what ep's FP8
// dispatch returns (DeepEP's (e4m3 tensor, scales) tuple) and what a
// checkpoint's weight + weight_scale_inv pair loads as.
//
// Row r of group g starts at Data[(g*Rows+r)*Stride]. Scales cover blocks of
// ScaleRows rows × ScaleBlock (128) K-elements: ScaleRows = 1 is the
// per-token 1×128 layout (activations), ScaleRows = 128 the per-block
// 128×128 layout (weights). Their logical shape is [Groups,
// ceil(Rows/ScaleRows), ceil(K/128)], row-major (K-major), in ScalesF32 or
// ScalesUE8M0 as Format says. A K that is not a multiple of 128 leaves a
// shorter last block.
type FP8Matrix struct {
	// Groups is the number of matrices G in the batch; 0 means 1.
	Groups int
	// Rows and K are the dimensions of one group's matrix.
	Rows, K int
	// Stride is the element distance between consecutive rows (≥ K); 0
	// means K (contiguous).
	Stride int
	// Data holds the E4M3 values; it needs at least
	// (Groups*Rows−1)*Stride + K elements. Host memory is
	// Host[E4M3](slice).
	Data Storage[E4M3]
	// ScaleRows is the number of rows one scale covers: 1 or 128.
	ScaleRows int
	// Format selects ScalesF32 or ScalesUE8M0.
	Format ScaleFormat
	// ScalesF32 holds [Groups, ceil(Rows/ScaleRows), ceil(K/128)] float32
	// scales when Format is ScaleF32.
	ScalesF32 Storage[float32]
	// ScalesUE8M0 holds the same logical shape as UE8M0 bytes when Format is
	// ScaleUE8M0.
	ScalesUE8M0 Storage[UE8M0]
}

// FP8Host is an FP8Matrix resolved to host slices (FP8Matrix.Host), what
// CPU code indexes: the layout of the embedded operand, with Data,
// ScalesF32 and ScalesUE8M0 as slices (nil where the operand has none).
type FP8Host struct {
	*FP8Matrix
	Data        []E4M3
	ScalesF32   []float32
	ScalesUE8M0 []UE8M0
}

// Host resolves m's storage to host slices once (no copy). Errors: an error
// wrapping ErrNotHost when a field's storage is not host memory; a nil m is
// ErrShape.
func (m *FP8Matrix) Host() (FP8Host, error) {
	if m == nil {
		return FP8Host{}, fieldErr("", ErrShape, "nil matrix")
	}
	h := FP8Host{FP8Matrix: m}
	var err error
	if h.Data, h.ScalesF32, h.ScalesUE8M0, err = hostScaled(m.Data, m.ScalesF32, m.ScalesUE8M0); err != nil {
		return FP8Host{}, err
	}
	return h, nil
}

// NumGroups returns Groups, or 1 when Groups is 0.
func (m *FP8Matrix) NumGroups() int {
	if m.Groups <= 0 {
		return 1
	}
	return m.Groups
}

// RowStride returns Stride, or K when Stride is 0.
func (m *FP8Matrix) RowStride() int {
	if m.Stride == 0 {
		return m.K
	}
	return m.Stride
}

// KBlocks returns ceil(K/128), the number of scale blocks along K.
func (m *FP8Matrix) KBlocks() int { return (m.K + ScaleBlock - 1) / ScaleBlock }

// ScaleRowsPerGroup returns ceil(Rows/ScaleRows).
func (m *FP8Matrix) ScaleRowsPerGroup() int {
	if m.ScaleRows <= 0 {
		return 0
	}
	return (m.Rows + m.ScaleRows - 1) / m.ScaleRows
}

// Scale returns the float32 scale that applies to row r of group g in K
// block kb. It does not check bounds beyond Go's own.
func (m FP8Host) Scale(g, r, kb int) float32 {
	i := (g*m.ScaleRowsPerGroup()+r/m.ScaleRows)*m.KBlocks() + kb
	if m.Format == ScaleUE8M0 {
		return m.ScalesUE8M0[i].Float32()
	}
	return m.ScalesF32[i]
}

// Row returns the K values of row r of group g (nil when K is 0).
func (m FP8Host) Row(g, r int) []E4M3 {
	if m.K == 0 {
		return nil
	}
	off := (g*m.Rows + r) * m.RowStride()
	return m.Data[off : off+m.K]
}

// FieldError is a bad-operand error: Field names the offending field
// ("Data", "ScalesF32", "Stride", ...; empty for the operand as a whole) and
// Err is the sentinel it wraps (ErrShape or ErrScales).
type FieldError struct {
	Field string
	Err   error
	Msg   string
}

// Error returns "tensor: <field>: <msg> (<sentinel>)".
func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("tensor: %s (%v)", e.Msg, e.Err)
	}
	return fmt.Sprintf("tensor: %s: %s (%v)", e.Field, e.Msg, e.Err)
}

// Unwrap returns the sentinel.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field string, sentinel error, format string, args ...any) error {
	return &FieldError{Field: field, Err: sentinel, Msg: fmt.Sprintf(format, args...)}
}

// maxOperandElems bounds products of operand dimensions so that length
// arithmetic cannot overflow int.
const maxOperandElems = 1 << 48

func mulOK(a, b int) bool { return a == 0 || b <= maxOperandElems/a }

// Check verifies that m is a well-formed operand: non-negative Groups, Rows
// and K, Stride 0 or ≥ K, Data long enough, ScaleRows 1 or 128, a known
// Format and a scale slice of exactly [Groups, ceil(Rows/ScaleRows),
// ceil(K/128)] elements. It returns a *FieldError wrapping ErrShape
// (dimensions, strides, data) or ErrScales (scale layout); a nil m is
// ErrShape.
func (m *FP8Matrix) Check() error {
	if m == nil {
		return fieldErr("", ErrShape, "nil matrix")
	}
	if m.Groups < 0 {
		return fieldErr("Groups", ErrShape, "negative group count %d", m.Groups)
	}
	g := m.NumGroups()
	if m.Rows < 0 || m.K < 0 {
		return fieldErr("", ErrShape, "negative dimensions Rows=%d K=%d", m.Rows, m.K)
	}
	if m.Stride != 0 && m.Stride < m.K {
		return fieldErr("Stride", ErrShape, "stride %d < K %d", m.Stride, m.K)
	}
	st := m.RowStride()
	if !mulOK(g, m.Rows) || !mulOK(g*m.Rows, st) || st > maxOperandElems {
		return fieldErr("", ErrShape, "dimensions too large")
	}
	rows := g * m.Rows
	if rows > 0 && m.K > 0 {
		need := (rows-1)*st + m.K
		if n := StorageLen(m.Data); n < need {
			return fieldErr("Data", ErrShape, "len %d < %d needed for [%d,%d,%d] stride %d", n, need, g, m.Rows, m.K, st)
		}
	}
	if m.ScaleRows != 1 && m.ScaleRows != ScaleBlock {
		return fieldErr("ScaleRows", ErrScales, "got %d, want 1 (per-token) or 128 (per-block)", m.ScaleRows)
	}
	ns := g * m.ScaleRowsPerGroup() * m.KBlocks()
	switch m.Format {
	case ScaleF32:
		if n := StorageLen(m.ScalesF32); n != ns {
			return fieldErr("ScalesF32", ErrScales, "len %d, want %d ([%d,%d,%d])", n, ns, g, m.ScaleRowsPerGroup(), m.KBlocks())
		}
	case ScaleUE8M0:
		if n := StorageLen(m.ScalesUE8M0); n != ns {
			return fieldErr("ScalesUE8M0", ErrScales, "len %d, want %d ([%d,%d,%d])", n, ns, g, m.ScaleRowsPerGroup(), m.KBlocks())
		}
	default:
		return fieldErr("Format", ErrScales, "unknown scale format %d", m.Format)
	}
	return nil
}

// Clone returns a deep copy of m in host memory: same layout, its own Data
// and scales (for keeping an operand that aliases memory about to go away,
// such as a closed file's or a reused dispatch buffer's). Errors: one
// wrapping ErrNotHost for storage that is not host memory; a nil m is
// ErrShape.
func (m *FP8Matrix) Clone() (*FP8Matrix, error) {
	h, err := m.Host()
	if err != nil {
		return nil, err
	}
	c := *m
	c.Data = hostClone(h.Data, m.Data)
	c.ScalesF32 = hostClone(h.ScalesF32, m.ScalesF32)
	c.ScalesUE8M0 = hostClone(h.ScalesUE8M0, m.ScalesUE8M0)
	return &c, nil
}

// hostClone copies s into new host storage; a nil orig stays nil.
func hostClone[T any](s []T, orig Storage[T]) Storage[T] {
	if orig == nil {
		return nil
	}
	return Host[T](append([]T(nil), s...))
}

// Regroup views m's Groups·Rows rows as groups groups of Groups·Rows/groups
// rows each (no copy): the per-token output of QuantizePerToken over
// [G·M, K] becomes the masked GEMM's A [G, M, K], and Stack(gate, up)
// regrouped to 1 is the fused [2·N, K] weight. The row count must divide
// evenly and, for 128×128 scales, every new group must hold a multiple of
// 128 rows (or be the only one) so that the scale blocks stay whole.
// Errors: those of m.Check, or a *FieldError wrapping ErrShape (uneven
// split) or ErrScales (a split through a scale block).
func (m *FP8Matrix) Regroup(groups int) (*FP8Matrix, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	total := m.NumGroups() * m.Rows
	if groups <= 0 || total%groups != 0 {
		return nil, fieldErr("Groups", ErrShape, "%d rows do not split into %d groups", total, groups)
	}
	rows := total / groups
	if m.ScaleRows > 1 && (m.Rows%m.ScaleRows != 0 && m.NumGroups() > 1 || rows%m.ScaleRows != 0 && groups > 1) {
		return nil, fieldErr("ScaleRows", ErrScales, "regrouping [%d, %d] rows as [%d, %d] splits %d-row scale blocks",
			m.NumGroups(), m.Rows, groups, rows, m.ScaleRows)
	}
	c := *m
	c.Groups, c.Rows = groups, rows
	if err := c.Check(); err != nil {
		return nil, err
	}
	return &c, nil
}
