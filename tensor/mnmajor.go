package tensor

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// FP8MNMatrix is an MN-major FP8 E4M3 operand: the logical matrix [MN, K]
// of a GEMM (MN the row count M or N, K the reduction dimension) stored
// transposed, as [K, MN] row-major, so that consecutive MN elements of one
// K index are adjacent. It is the "T" side of DeepGEMM's fp8_gemm_{nn,tn,tt}
// (a torch tensor of shape [K, MN], or x.T.contiguous().T of an [MN, K]
// one) and both operands of k_grouped_fp8_gemm_tn_contiguous (A [ΣK, M], B
// [ΣK, N]).
//
// Element (mn, k) is Data[k*Stride + mn]. Scales keep the quantization
// along K of the K-major operands (blocks of 128 K-elements) and are stored
// in the transposed order upstream passes them: [ceil(K/128),
// ceil(MN/ScaleMN)] row-major, K-block-major. ScaleMN = 1 is the
// per-channel layout (one scale per MN index and 128 K: the transpose of a
// per-token 1×128 operand, DeepGEMM per_channel_cast_to_fp8), ScaleMN =
// 128 the 128×128 block layout of weights. A K that is not a multiple of
// 128 leaves a shorter last block.
type FP8MNMatrix struct {
	// MN and K are the logical dimensions.
	MN, K int
	// Stride is the element distance between consecutive K rows of the
	// stored [K, MN] matrix (≥ MN); 0 means MN.
	Stride int
	// Data holds the E4M3 values; it needs at least (K−1)*Stride + MN
	// elements. Host memory is Host[E4M3](slice).
	Data Storage[E4M3]
	// ScaleMN is the number of MN indices one scale covers: 1 or 128.
	ScaleMN int
	// Format selects ScalesF32 or ScalesUE8M0.
	Format ScaleFormat
	// ScalesF32 holds [ceil(K/128), ceil(MN/ScaleMN)] float32 scales when
	// Format is ScaleF32.
	ScalesF32 Storage[float32]
	// ScalesUE8M0 holds the same logical shape as UE8M0 bytes when Format is
	// ScaleUE8M0.
	ScalesUE8M0 Storage[UE8M0]
}

// FP8MNHost is an FP8MNMatrix resolved to host slices (FP8MNMatrix.Host).
type FP8MNHost struct {
	*FP8MNMatrix
	Data        []E4M3
	ScalesF32   []float32
	ScalesUE8M0 []UE8M0
}

// RowStride returns Stride, or MN when Stride is 0.
func (m *FP8MNMatrix) RowStride() int {
	if m.Stride == 0 {
		return m.MN
	}
	return m.Stride
}

// KBlocks returns ceil(K/128), the number of scale blocks along K.
func (m *FP8MNMatrix) KBlocks() int { return (m.K + ScaleBlock - 1) / ScaleBlock }

// ScaleCols returns ceil(MN/ScaleMN), the scale row length.
func (m *FP8MNMatrix) ScaleCols() int {
	if m.ScaleMN <= 0 {
		return 0
	}
	return (m.MN + m.ScaleMN - 1) / m.ScaleMN
}

// Host resolves m's storage to host slices once (no copy). Errors: one
// wrapping ErrNotHost for storage that is not host memory; a nil m is
// ErrShape.
func (m *FP8MNMatrix) Host() (FP8MNHost, error) {
	if m == nil {
		return FP8MNHost{}, fieldErr("", ErrShape, "nil matrix")
	}
	h := FP8MNHost{FP8MNMatrix: m}
	var err error
	if h.Data, err = HostSlice(m.Data); err != nil {
		return FP8MNHost{}, fmt.Errorf("field Data: %w", err)
	}
	if h.ScalesF32, err = HostSlice(m.ScalesF32); err != nil {
		return FP8MNHost{}, fmt.Errorf("field ScalesF32: %w", err)
	}
	if h.ScalesUE8M0, err = HostSlice(m.ScalesUE8M0); err != nil {
		return FP8MNHost{}, fmt.Errorf("field ScalesUE8M0: %w", err)
	}
	return h, nil
}

// At returns element (mn, k) of the logical [MN, K] matrix.
func (m FP8MNHost) At(mn, k int) E4M3 { return m.Data[k*m.RowStride()+mn] }

// Scale returns the float32 scale of element (mn, k) for K block kb =
// k/128. It does not check bounds beyond Go's own.
func (m FP8MNHost) Scale(mn, kb int) float32 {
	i := kb*m.ScaleCols() + mn/m.ScaleMN
	if m.Format == ScaleUE8M0 {
		return m.ScalesUE8M0[i].Float32()
	}
	return m.ScalesF32[i]
}

// Check verifies that m is well formed: non-negative MN and K, Stride 0 or
// ≥ MN, Data long enough, ScaleMN 1 or 128, a known Format and exactly
// [ceil(K/128), ceil(MN/ScaleMN)] scales. It returns a *FieldError wrapping
// ErrShape or ErrScales; a nil m is ErrShape.
func (m *FP8MNMatrix) Check() error {
	if m == nil {
		return fieldErr("", ErrShape, "nil matrix")
	}
	if m.MN < 0 || m.K < 0 {
		return fieldErr("", ErrShape, "negative dimensions MN=%d K=%d", m.MN, m.K)
	}
	if m.Stride != 0 && m.Stride < m.MN {
		return fieldErr("Stride", ErrShape, "stride %d < MN %d", m.Stride, m.MN)
	}
	st := m.RowStride()
	if !mulOK(m.K, st) || st > maxOperandElems {
		return fieldErr("", ErrShape, "dimensions too large")
	}
	if m.K > 0 && m.MN > 0 {
		need := (m.K-1)*st + m.MN
		if n := StorageLen(m.Data); n < need {
			return fieldErr("Data", ErrShape, "len %d < %d needed for [K=%d, MN=%d] stride %d", n, need, m.K, m.MN, st)
		}
	}
	if m.ScaleMN != 1 && m.ScaleMN != ScaleBlock {
		return fieldErr("ScaleMN", ErrScales, "got %d, want 1 (per-channel) or 128 (per-block)", m.ScaleMN)
	}
	ns := m.KBlocks() * m.ScaleCols()
	switch m.Format {
	case ScaleF32:
		if n := StorageLen(m.ScalesF32); n != ns {
			return fieldErr("ScalesF32", ErrScales, "len %d, want %d ([%d,%d])", n, ns, m.KBlocks(), m.ScaleCols())
		}
	case ScaleUE8M0:
		if n := StorageLen(m.ScalesUE8M0); n != ns {
			return fieldErr("ScalesUE8M0", ErrScales, "len %d, want %d ([%d,%d])", n, ns, m.KBlocks(), m.ScaleCols())
		}
	default:
		return fieldErr("Format", ErrScales, "unknown scale format %d", m.Format)
	}
	return nil
}

// transposeTile is the square tile of the blocked transposes: 64×64 bytes
// of E4M3 stay in L1 on both sides.
const transposeTile = 64

// halvesRows and bytesRows are the source rows of a buffered tile: each
// destination row segment written is then 512 bytes, so a walk down the
// destination visits each page for 512 bytes rather than 64 or 128 (at
// 4 KiB-page strides the page walks, not the bytes, set the speed).
const (
	halvesRows = 256
	bytesRows  = 512
)

// TransposeInto writes src [rows, cols] (row stride ss) transposed into dst
// [cols, rows] (row stride ds), in cache-sized tiles. It is the one
// transpose behind ToMNMajor and ToKMajor, exported for backends that
// change an operand's major-ness (BF16 and float32 too). One-byte elements
// (E4M3, UE8M0) move in 8×8 and two-byte elements (BF16) in 4×4 blocks
// held in 64-bit words. It does not check bounds beyond Go's own.
func TransposeInto[T any](dst []T, ds int, src []T, ss, rows, cols int) {
	switch d := any(dst).(type) {
	case []E4M3:
		transposeBytes(asBytes(d), ds, asBytes(any(src).([]E4M3)), ss, rows, cols)
		return
	case []UE8M0:
		transposeBytes(asBytes(d), ds, asBytes(any(src).([]UE8M0)), ss, rows, cols)
		return
	case []BF16:
		transposeHalves(asUint16(d), ds, asUint16(any(src).([]BF16)), ss, rows, cols)
		return
	}
	transposeTiles(dst, ds, src, ss, 0, rows, 0, cols)
}

// transposeTiles is the element-by-element transpose of rows [r0, r1) and
// columns [c0, c1), in tiles.
func transposeTiles[T any](dst []T, ds int, src []T, ss, r0, r1, c0, c1 int) {
	for rt := r0; rt < r1; rt += transposeTile {
		re := min(rt+transposeTile, r1)
		for ct := c0; ct < c1; ct += transposeTile {
			ce := min(ct+transposeTile, c1)
			for r := rt; r < re; r++ {
				row := src[r*ss:]
				for c := ct; c < ce; c++ {
					dst[c*ds+r] = row[c]
				}
			}
		}
	}
}

// load64 and store64 move eight bytes as one little-endian word (one load
// or store on amd64 and arm64).
func load64(s []uint8) uint64 { return binary.LittleEndian.Uint64(s) }

func store64(s []uint8, v uint64) { binary.LittleEndian.PutUint64(s, v) }

// swapv returns a and b with the bits selected by mask<<sh of a exchanged
// with those selected by mask of b: one step of a recursive block
// transpose.
func swapv(a, b uint64, sh uint, mask uint64) (uint64, uint64) {
	t := ((a >> sh) ^ b) & mask
	return a ^ t<<sh, b ^ t
}

// transposeBytes transposes one-byte elements in 8×8 blocks: eight rows of
// eight bytes are loaded as words and transposed with three rounds of
// masked swaps (1-, 2- and 4-byte units).
func transposeBytes(dst []uint8, ds int, src []uint8, ss, rows, cols int) {
	transposeBuffered(dst, ds, src, ss, rows, cols, 8, bytesRows, bytesBlock)
}

// bytesBlock transposes rows [r0, r1) and columns [c0, c1) (multiples of
// 8 apart) of src into dst in 8×8 blocks held in registers.
func bytesBlock(dst []uint8, ds int, src []uint8, ss, r0, r1, c0, c1 int) {
	for r := r0; r < r1; r += 8 {
		for c := c0; c < c1; c += 8 {
			// Eight words in registers, three rounds of swaps.
			x0, x1 := swapv(load64(src[r*ss+c:]), load64(src[(r+1)*ss+c:]), 8, 0x00FF00FF00FF00FF)
			x2, x3 := swapv(load64(src[(r+2)*ss+c:]), load64(src[(r+3)*ss+c:]), 8, 0x00FF00FF00FF00FF)
			x4, x5 := swapv(load64(src[(r+4)*ss+c:]), load64(src[(r+5)*ss+c:]), 8, 0x00FF00FF00FF00FF)
			x6, x7 := swapv(load64(src[(r+6)*ss+c:]), load64(src[(r+7)*ss+c:]), 8, 0x00FF00FF00FF00FF)
			x0, x2 = swapv(x0, x2, 16, 0x0000FFFF0000FFFF)
			x1, x3 = swapv(x1, x3, 16, 0x0000FFFF0000FFFF)
			x4, x6 = swapv(x4, x6, 16, 0x0000FFFF0000FFFF)
			x5, x7 = swapv(x5, x7, 16, 0x0000FFFF0000FFFF)
			x0, x4 = swapv(x0, x4, 32, 0x00000000FFFFFFFF)
			x1, x5 = swapv(x1, x5, 32, 0x00000000FFFFFFFF)
			x2, x6 = swapv(x2, x6, 32, 0x00000000FFFFFFFF)
			x3, x7 = swapv(x3, x7, 32, 0x00000000FFFFFFFF)
			store64(dst[c*ds+r:], x0)
			store64(dst[(c+1)*ds+r:], x1)
			store64(dst[(c+2)*ds+r:], x2)
			store64(dst[(c+3)*ds+r:], x3)
			store64(dst[(c+4)*ds+r:], x4)
			store64(dst[(c+5)*ds+r:], x5)
			store64(dst[(c+6)*ds+r:], x6)
			store64(dst[(c+7)*ds+r:], x7)
		}
	}
}

// load4 and store4 move four two-byte elements as one little-endian word
// (element 0 in the low bits).
func load4(s []uint16) uint64 {
	_ = s[3]
	return binary.LittleEndian.Uint64(unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 8)) //nolint:gosec // s[3] is in range
}

func store4(s []uint16, v uint64) {
	_ = s[3]
	binary.LittleEndian.PutUint64(unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 8), v)
}

// transposeHalves transposes two-byte elements in 4×4 blocks (two rounds
// of masked swaps). It is not generic: a generic version's calls to the
// word helpers go through the shape dictionary and are not inlined (three
// times slower).
func transposeHalves(dst []uint16, ds int, src []uint16, ss, rows, cols int) {
	transposeBuffered(dst, ds, src, ss, rows, cols, 4, halvesRows, halvesBlock)
}

// transposeBuffered is the tile loop of transposeBytes and transposeHalves.
// block transposes a region whose sides are multiples of a (the register
// block: 8 or 4) and is called with such regions only; the remainder rows
// and columns go element by element. A whole tile of tr source rows and
// transposeTile columns goes through two buffers: its rows are copied in
// whole, transposed there and copied out whole, so each destination row
// segment is written in one go (tr elements) rather than a few bytes per
// visit. At the power-of-two strides of 4096-wide operands the direct way
// is bound by page walks and ran 2–3× slower.
func transposeBuffered[T any](dst []T, ds int, src []T, ss, rows, cols, a, tr int, block func(dst []T, ds int, src []T, ss, r0, r1, c0, c1 int)) {
	const t = transposeTile
	ra, ca := rows/a*a, cols/a*a
	var in, out []T
	if ra >= tr && ca >= t {
		in, out = make([]T, tr*t), make([]T, tr*t)
	}
	for rt := 0; rt < ra; rt += tr {
		re := min(rt+tr, ra)
		for ct := 0; ct < ca; ct += t {
			ce := min(ct+t, ca)
			if re-rt < tr || ce-ct < t {
				block(dst, ds, src, ss, rt, re, ct, ce)
				continue
			}
			for i := range tr {
				copy(in[i*t:(i+1)*t], src[(rt+i)*ss+ct:])
			}
			block(out, tr, in, t, 0, tr, 0, t)
			for i := range t {
				copy(dst[(ct+i)*ds+rt:][:tr], out[i*tr:(i+1)*tr])
			}
		}
	}
	transposeTiles(dst, ds, src, ss, 0, rows, ca, cols)
	transposeTiles(dst, ds, src, ss, ra, rows, 0, ca)
}

// halvesBlock transposes rows [r0, r1) and columns [c0, c1) (multiples of
// 4 apart) of src into dst in 4×4 blocks held in registers.
func halvesBlock(dst []uint16, ds int, src []uint16, ss, r0, r1, c0, c1 int) {
	for r := r0; r < r1; r += 4 {
		s0, s1, s2, s3 := src[r*ss:], src[(r+1)*ss:], src[(r+2)*ss:], src[(r+3)*ss:]
		for c := c0; c < c1; c += 4 {
			// The four words live in registers (an array whose elements
			// are swapped through pointers would not).
			x0, x1 := swapv(load4(s0[c:]), load4(s1[c:]), 16, 0x0000FFFF0000FFFF)
			x2, x3 := swapv(load4(s2[c:]), load4(s3[c:]), 16, 0x0000FFFF0000FFFF)
			x0, x2 = swapv(x0, x2, 32, 0x00000000FFFFFFFF)
			x1, x3 = swapv(x1, x3, 32, 0x00000000FFFFFFFF)
			store4(dst[c*ds+r:], x0)
			store4(dst[(c+1)*ds+r:], x1)
			store4(dst[(c+2)*ds+r:], x2)
			store4(dst[(c+3)*ds+r:], x3)
		}
	}
}

// ToMNMajor returns m's single group stored MN-major (a host copy): the
// same values and scales, Data transposed to [K, Rows], scales transposed to
// [ceil(K/128), ceil(Rows/ScaleRows)]. It is exact (no requantization), like
// upstream's x.T.contiguous().T on a quantized operand. Errors: m.Check's,
// one wrapping ErrNotHost, or ErrShape for more than one group.
func ToMNMajor(m *FP8Matrix) (*FP8MNMatrix, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	if m.NumGroups() != 1 {
		return nil, fieldErr("Groups", ErrShape, "%d groups, want 1", m.NumGroups())
	}
	h, err := m.Host()
	if err != nil {
		return nil, err
	}
	out := &FP8MNMatrix{MN: m.Rows, K: m.K, ScaleMN: m.ScaleRows, Format: m.Format}
	data := make([]E4M3, m.Rows*m.K)
	if len(data) > 0 {
		TransposeInto(data, m.Rows, h.Data, m.RowStride(), m.Rows, m.K)
	}
	out.Data = Host[E4M3](data)
	sr, kbs := m.ScaleRowsPerGroup(), m.KBlocks()
	if m.Format == ScaleUE8M0 {
		s := make([]UE8M0, sr*kbs)
		TransposeInto(s, sr, h.ScalesUE8M0, kbs, sr, kbs)
		out.ScalesUE8M0 = Host[UE8M0](s)
	} else {
		s := make([]float32, sr*kbs)
		TransposeInto(s, sr, h.ScalesF32, kbs, sr, kbs)
		out.ScalesF32 = Host[float32](s)
	}
	return out, nil
}

// ToKMajor is the inverse of ToMNMajor: m as a K-major FP8Matrix [MN, K]
// (a host copy, ScaleRows = m.ScaleMN). Errors: m.Check's or one wrapping
// ErrNotHost.
func ToKMajor(m *FP8MNMatrix) (*FP8Matrix, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	h, err := m.Host()
	if err != nil {
		return nil, err
	}
	out := &FP8Matrix{Groups: 1, Rows: m.MN, K: m.K, ScaleRows: m.ScaleMN, Format: m.Format}
	data := make([]E4M3, m.MN*m.K)
	if len(data) > 0 {
		TransposeInto(data, m.K, h.Data, m.RowStride(), m.K, m.MN)
	}
	out.Data = Host[E4M3](data)
	sc, kbs := m.ScaleCols(), m.KBlocks()
	if m.Format == ScaleUE8M0 {
		s := make([]UE8M0, sc*kbs)
		TransposeInto(s, kbs, h.ScalesUE8M0, sc, kbs, sc)
		out.ScalesUE8M0 = Host[UE8M0](s)
	} else {
		s := make([]float32, sc*kbs)
		TransposeInto(s, kbs, h.ScalesF32, sc, kbs, sc)
		out.ScalesF32 = Host[float32](s)
	}
	return out, nil
}

// QuantizePerChannel quantizes x [k, mn] (row-major float32, K along rows)
// to an MN-major E4M3 operand with one scale per column and 128 rows (128×1,
// per-channel): amax over the block, clamped to ≥ 1e−4, scale = amax/448
// (optionally a power of two), data = e4m3(x · (1/scale)). The result is
// the logical [mn, k] operand with ScaleMN = 1, scales [ceil(k/128), mn].
// It mirrors DeepGEMM per_channel_cast_to_fp8 (the A and B of
// k_grouped_fp8_gemm_tn_contiguous, quantized along the token dimension);
// a k that is not a multiple of 128 leaves a shorter last block. Errors: a
// *FieldError wrapping ErrShape if k or mn is negative or len(x) != k·mn.
func QuantizePerChannel(x []float32, k, mn int, opt QuantOptions) (*FP8MNMatrix, error) {
	if err := checkQuantInput(len(x), k, mn); err != nil {
		return nil, err
	}
	m := &FP8MNMatrix{MN: mn, K: k, ScaleMN: 1}
	data := make([]E4M3, k*mn)
	m.Data = Host[E4M3](data)
	kbs := m.KBlocks()
	var sf []float32
	var su []UE8M0
	if opt.UE8M0 {
		m.Format = ScaleUE8M0
		su = make([]UE8M0, kbs*mn)
		m.ScalesUE8M0 = Host[UE8M0](su)
	} else {
		sf = make([]float32, kbs*mn)
		m.ScalesF32 = Host[float32](sf)
	}
	amax := make([]float32, mn)
	inv := make([]float32, mn)
	for kb := 0; kb < kbs; kb++ {
		lo, hi := kb*ScaleBlock, min((kb+1)*ScaleBlock, k)
		clear(amax)
		for r := lo; r < hi; r++ {
			for c, v := range x[r*mn : (r+1)*mn] {
				amax[c] = absMax(amax[c], v)
			}
		}
		for c := range amax {
			s, i, code := blockScale(amax[c], opt.UE8M0)
			if opt.UE8M0 {
				su[kb*mn+c] = code
			} else {
				sf[kb*mn+c] = s
			}
			inv[c] = i
		}
		for r := lo; r < hi; r++ {
			for c, v := range x[r*mn : (r+1)*mn] {
				data[r*mn+c] = E4M3FromFloat32(v * inv[c])
			}
		}
	}
	return m, nil
}

// DequantizeMN returns m's logical values as float32 [MN, K] row-major
// (K-major): e4m3 value × its block's scale. Errors: m.Check's or one
// wrapping ErrNotHost.
func DequantizeMN(m *FP8MNMatrix) ([]float32, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	h, err := m.Host()
	if err != nil {
		return nil, err
	}
	out := make([]float32, m.MN*m.K)
	for r := 0; r < m.MN; r++ {
		for k := 0; k < m.K; k++ {
			out[r*m.K+k] = h.At(r, k).Float32() * h.Scale(r, k/ScaleBlock)
		}
	}
	return out, nil
}

// asUint16 views BF16 elements as their bits (no copy).
func asUint16(s []BF16) []uint16 {
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

// asBytes views one-byte elements as bytes (no copy).
func asBytes[T ~uint8](s []T) []uint8 {
	return unsafe.Slice((*uint8)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}
