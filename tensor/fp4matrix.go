package tensor

// FP4 scale granularities along K (DeepGEMM's gran_k for FP4 operands).
const (
	// FP4ScaleK32 is one scale per 32 K-elements, DeepGEMM's FP4 weight
	// recipe (recipe_b = (1, 32), the MXFP4 block).
	FP4ScaleK32 = 32
	// FP4ScaleK128 is one scale per 128 K-elements (ScaleBlock).
	FP4ScaleK128 = ScaleBlock
)

// FP4Matrix is a K-major packed FP4 (E2M1) operand [Rows, K] or, with
// Groups > 1, a batch [Groups, Rows, K], with per-row (1×ScaleK) scales:
// the FP4 B of DeepGEMM's fp8_fp4_gemm_nt and m_grouped_fp8_fp4_gemm_nt_*
// (a torch.int8 tensor [.., Rows, K/2] with its sf [.., Rows,
// ceil(K/gran_k)]).
//
// Every byte of Data holds two consecutive K-elements (E2M1x2, element 2i in
// the low nibble), so K must be even. Row r of group g starts at byte
// Data[(g*Rows+r)*Stride]. Scales are one per row and ScaleK K-elements, in
// the logical shape [Groups, Rows, ceil(K/ScaleK)], row-major, in ScalesF32
// or ScalesUE8M0 as Format says; a K that is not a multiple of ScaleK leaves
// a shorter last block. The value of element k of a row is
// E2M1·scale[k/ScaleK].
type FP4Matrix struct {
	// Groups is the number of matrices G in the batch; 0 means 1.
	Groups int
	// Rows and K are the dimensions of one group's matrix, in elements; K
	// is even.
	Rows, K int
	// Stride is the distance between consecutive rows in bytes (packed
	// pairs), ≥ K/2; 0 means K/2 (contiguous).
	Stride int
	// Data holds the packed values; it needs at least
	// (Groups*Rows−1)*Stride + K/2 bytes. Host memory is Host[E2M1x2](slice).
	Data Storage[E2M1x2]
	// ScaleK is the number of K-elements one scale covers: FP4ScaleK32 or
	// FP4ScaleK128.
	ScaleK int
	// Format selects ScalesF32 or ScalesUE8M0.
	Format ScaleFormat
	// ScalesF32 holds [Groups, Rows, ceil(K/ScaleK)] float32 scales when
	// Format is ScaleF32.
	ScalesF32 Storage[float32]
	// ScalesUE8M0 holds the same logical shape as UE8M0 bytes when Format is
	// ScaleUE8M0.
	ScalesUE8M0 Storage[UE8M0]
}

// FP4Host is an FP4Matrix resolved to host slices (FP4Matrix.Host).
type FP4Host struct {
	*FP4Matrix
	Data        []E2M1x2
	ScalesF32   []float32
	ScalesUE8M0 []UE8M0
}

// Host resolves m's storage to host slices once (no copy). Errors: one
// wrapping ErrNotHost when a field's storage is not host memory; a nil m is
// ErrShape.
func (m *FP4Matrix) Host() (FP4Host, error) {
	if m == nil {
		return FP4Host{}, fieldErr("", ErrShape, "nil matrix")
	}
	h := FP4Host{FP4Matrix: m}
	var err error
	if h.Data, h.ScalesF32, h.ScalesUE8M0, err = hostScaled(m.Data, m.ScalesF32, m.ScalesUE8M0); err != nil {
		return FP4Host{}, err
	}
	return h, nil
}

// NumGroups returns Groups, or 1 when Groups is 0.
func (m *FP4Matrix) NumGroups() int {
	if m.Groups <= 0 {
		return 1
	}
	return m.Groups
}

// RowStride returns Stride, or K/2 when Stride is 0 (in bytes).
func (m *FP4Matrix) RowStride() int {
	if m.Stride == 0 {
		return m.K / 2
	}
	return m.Stride
}

// KBlocks returns ceil(K/ScaleK), the number of scales per row (0 when
// ScaleK is not positive).
func (m *FP4Matrix) KBlocks() int {
	if m.ScaleK <= 0 {
		return 0
	}
	return (m.K + m.ScaleK - 1) / m.ScaleK
}

// Scale returns the float32 scale of row r of group g in scale block kb
// (K-elements [kb·ScaleK, (kb+1)·ScaleK)). It does not check bounds beyond
// Go's own.
func (m FP4Host) Scale(g, r, kb int) float32 {
	i := (g*m.Rows+r)*m.KBlocks() + kb
	if m.Format == ScaleUE8M0 {
		return m.ScalesUE8M0[i].Float32()
	}
	return m.ScalesF32[i]
}

// Row returns the K/2 packed bytes of row r of group g (nil when K is 0).
func (m FP4Host) Row(g, r int) []E2M1x2 {
	if m.K == 0 {
		return nil
	}
	off := (g*m.Rows + r) * m.RowStride()
	return m.Data[off : off+m.K/2]
}

// Check verifies that m is a well-formed operand: non-negative Groups, Rows
// and K, K even, Stride 0 or ≥ K/2, Data long enough, ScaleK 32 or 128, a
// known Format and a scale slice of exactly [Groups, Rows, ceil(K/ScaleK)]
// elements. It returns a *FieldError wrapping ErrShape (dimensions, strides,
// data) or ErrScales (scale layout); a nil m is ErrShape.
func (m *FP4Matrix) Check() error {
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
	if m.K%2 != 0 {
		return fieldErr("K", ErrShape, "K=%d is odd: FP4 packs two K-elements per byte", m.K)
	}
	if m.Stride != 0 && m.Stride < m.K/2 {
		return fieldErr("Stride", ErrShape, "stride %d bytes < K/2 = %d", m.Stride, m.K/2)
	}
	st := m.RowStride()
	if !mulOK(g, m.Rows) || !mulOK(g*m.Rows, st) || st > maxOperandElems || m.K > maxOperandElems {
		return fieldErr("", ErrShape, "dimensions too large")
	}
	rows := g * m.Rows
	if rows > 0 && m.K > 0 {
		need := (rows-1)*st + m.K/2
		if n := StorageLen(m.Data); n < need {
			return fieldErr("Data", ErrShape, "len %d bytes < %d needed for [%d,%d,%d] stride %d", n, need, g, m.Rows, m.K, st)
		}
	}
	if m.ScaleK != FP4ScaleK32 && m.ScaleK != FP4ScaleK128 {
		return fieldErr("ScaleK", ErrScales, "got %d, want 32 or 128 K-elements per scale", m.ScaleK)
	}
	ns := rows * m.KBlocks()
	if !mulOK(rows, m.KBlocks()) {
		return fieldErr("", ErrShape, "dimensions too large")
	}
	switch m.Format {
	case ScaleF32:
		if n := StorageLen(m.ScalesF32); n != ns {
			return fieldErr("ScalesF32", ErrScales, "len %d, want %d ([%d,%d,%d])", n, ns, g, m.Rows, m.KBlocks())
		}
	case ScaleUE8M0:
		if n := StorageLen(m.ScalesUE8M0); n != ns {
			return fieldErr("ScalesUE8M0", ErrScales, "len %d, want %d ([%d,%d,%d])", n, ns, g, m.Rows, m.KBlocks())
		}
	default:
		return fieldErr("Format", ErrScales, "unknown scale format %d", m.Format)
	}
	return nil
}

// Regroup views m's Groups·Rows rows as groups groups of Groups·Rows/groups
// rows each (no copy): QuantizePerTokenFP4 over [G·N, K] regrouped to G is
// the grouped GEMMs' B [G, N, K]. The scales are per row, so any even split
// keeps them whole. Errors: those of m.Check, or a *FieldError wrapping
// ErrShape for an uneven split.
func (m *FP4Matrix) Regroup(groups int) (*FP4Matrix, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	total := m.NumGroups() * m.Rows
	if groups <= 0 || total%groups != 0 {
		return nil, fieldErr("Groups", ErrShape, "%d rows do not split into %d groups", total, groups)
	}
	c := *m
	c.Groups, c.Rows = groups, total/groups
	return &c, nil
}

// QuantizePerTokenFP4 quantizes x [rows, k] (row-major float32, k even) to
// packed E2M1 with one scale per row and scaleK K-elements (32 or 128):
// amax = max|x| over the block, clamped to ≥ 1e−4; scale = amax/6
// (optionally rounded up to a power of two, UE8M0Ceil, and stored as UE8M0
// bytes); codes = e2m1(x · (1/scale)) packed two per byte, even element in
// the low nibble. A short last block is quantized on its own elements. It
// mirrors DeepGEMM deep_gemm/utils/math.py per_token_cast_to_fp4 (gran_k =
// scaleK, use_ue8m0 = opt.UE8M0, unpacked scales), with two documented
// differences: values halfway between two codes round to the even code
// (E2M1FromFloat32, the hardware cast) where upstream's Python reference
// rounds them toward zero, and a block holding a NaN gets a NaN scale
// (float32 NaN or UE8M0 0xFF) so that the NaN reaches the GEMM output, where
// upstream's reference turns it into zeros. Errors: a *FieldError wrapping
// ErrShape for negative dimensions, an odd k or len(x) != rows·k, ErrScales
// for another scaleK.
func QuantizePerTokenFP4(x []float32, rows, k, scaleK int, opt QuantOptions) (*FP4Matrix, error) {
	if err := checkQuantInput(len(x), rows, k); err != nil {
		return nil, err
	}
	if k%2 != 0 {
		return nil, fieldErr("k", ErrShape, "k=%d is odd: FP4 packs two K-elements per byte", k)
	}
	if scaleK != FP4ScaleK32 && scaleK != FP4ScaleK128 {
		return nil, fieldErr("scaleK", ErrScales, "got %d, want 32 or 128", scaleK)
	}
	m := &FP4Matrix{Groups: 1, Rows: rows, K: k, ScaleK: scaleK}
	data := make([]E2M1x2, rows*k/2)
	m.Data = Host[E2M1x2](data)
	kbs := m.KBlocks()
	var sf []float32
	var su []UE8M0
	if opt.UE8M0 {
		m.Format = ScaleUE8M0
		su = make([]UE8M0, rows*kbs)
		m.ScalesUE8M0 = Host[UE8M0](su)
	} else {
		sf = make([]float32, rows*kbs)
		m.ScalesF32 = Host[float32](sf)
	}
	for r := 0; r < rows; r++ {
		row := x[r*k : (r+1)*k]
		out := data[r*k/2 : (r+1)*k/2]
		for kb := 0; kb < kbs; kb++ {
			lo, hi := kb*scaleK, min((kb+1)*scaleK, k)
			var amax float32
			for _, v := range row[lo:hi] {
				amax = absMax(amax, v)
			}
			s, inv, code := fp4BlockScale(amax, opt.UE8M0)
			if opt.UE8M0 {
				su[r*kbs+kb] = code
			} else {
				sf[r*kbs+kb] = s
			}
			for i := lo; i < hi; i += 2 {
				out[i/2] = PackE2M1(E2M1FromFloat32(row[i]*inv), E2M1FromFloat32(row[i+1]*inv))
			}
		}
	}
	return m, nil
}

// fp4BlockScale is blockScale for E2M1: scale = max(amax, 1e−4)/6, rounded
// up to a power of two when pow2; NaN propagates (UE8M0 0xFF).
func fp4BlockScale(amax float32, pow2 bool) (float32, float32, UE8M0) {
	amax = max(amax, AmaxClamp) // max keeps a NaN amax
	sf := amax / E2M1Max
	var code UE8M0
	if pow2 {
		code = UE8M0Ceil(sf)
		sf = code.Float32()
	}
	return sf, 1 / sf, code
}

// DequantizeFP4 returns m's values as float32 [Groups·Rows, K] row-major:
// e2m1 value × its block's scale, DeepGEMM's cast_back_from_fp4. Errors:
// those of m.Check (ErrShape, ErrScales), or one wrapping ErrNotHost.
func DequantizeFP4(m *FP4Matrix) ([]float32, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	h, err := m.Host()
	if err != nil {
		return nil, err
	}
	g := m.NumGroups()
	out := make([]float32, g*m.Rows*m.K)
	for gi := 0; gi < g; gi++ {
		for r := 0; r < m.Rows; r++ {
			row := h.Row(gi, r)
			dst := out[(gi*m.Rows+r)*m.K:]
			for kb := 0; kb < m.KBlocks(); kb++ {
				lo, hi := kb*m.ScaleK, min((kb+1)*m.ScaleK, m.K)
				DecodeE2M1x2(dst[lo:hi], row[lo/2:hi/2], h.Scale(gi, r, kb))
			}
		}
	}
	return out, nil
}

// StackFP4 concatenates single-group FP4 operands of equal Rows, K, ScaleK
// and Format into one batch [G, Rows, K] (the B of the grouped FP8×FP4
// GEMMs), copying into contiguous host memory: Stack for FP4. Errors: a
// *FieldError wrapping ErrShape for no operands, a nil one or a mismatch,
// the operand's own Check error, or one wrapping ErrNotHost.
func StackFP4(ms ...*FP4Matrix) (*FP4Matrix, error) {
	data, sf, su, err := stackScaled(ms)
	if err != nil {
		return nil, err
	}
	f := ms[0]
	out := &FP4Matrix{Groups: len(ms), Rows: f.Rows, K: f.K, ScaleK: f.ScaleK, Format: f.Format}
	out.Data = Host[E2M1x2](data)
	if f.Format == ScaleUE8M0 {
		out.ScalesUE8M0 = Host[UE8M0](su)
	} else {
		out.ScalesF32 = Host[float32](sf)
	}
	return out, nil
}
