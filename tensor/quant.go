package tensor

import (
	"math"
)

// AmaxClamp is the smallest block amax the quantizers use, so that all-zero
// blocks get a finite scale (DeepGEMM per_token_cast_to_fp8 and DeepEP's
// dispatch kernels: amax.clamp(1e-4)).
const AmaxClamp = 1e-4

// QuantOptions tunes the quantizers.
type QuantOptions struct {
	// UE8M0 rounds every scale up to a power of two (UE8M0Ceil, DeepGEMM
	// ceil_to_ue8m0) and stores it as ScaleUE8M0 bytes.
	UE8M0 bool
}

func checkQuantInput(n, rows, k int) error {
	if rows < 0 || k < 0 || !mulOK(rows, k) {
		return fieldErr("rows,k", ErrShape, "bad dimensions [%d,%d]", rows, k)
	}
	if n != rows*k {
		return fieldErr("x", ErrShape, "len %d, want rows·k = %d", n, rows*k)
	}
	return nil
}

// blockScale turns a block amax into (scale, 1/scale, UE8M0 code): scale =
// max(amax, 1e-4)/448, rounded up to a power of two when pow2. NaN
// propagates. It is the one scale rule of every FP8 quantizer.
func blockScale(amax float32, pow2 bool) (float32, float32, UE8M0) {
	if amax < AmaxClamp {
		amax = AmaxClamp
	}
	sf := amax / E4M3Max
	var code UE8M0
	if pow2 {
		code = UE8M0Ceil(sf)
		sf = code.Float32()
	}
	return sf, 1 / sf, code
}

func absMax(amax, v float32) float32 {
	if v != v || amax != amax {
		return float32(math.NaN())
	}
	if v < 0 {
		v = -v
	}
	if v > amax {
		return v
	}
	return amax
}

// newQuantized allocates a host operand [rows, k] and returns it with its
// host view.
func newQuantized(rows, k, scaleRows int, opt QuantOptions) (*FP8Matrix, FP8Host) {
	m := &FP8Matrix{Groups: 1, Rows: rows, K: k, ScaleRows: scaleRows}
	h := FP8Host{FP8Matrix: m, Data: make([]E4M3, rows*k)}
	m.Data = Host[E4M3](h.Data)
	n := m.ScaleRowsPerGroup() * m.KBlocks()
	if opt.UE8M0 {
		m.Format = ScaleUE8M0
		h.ScalesUE8M0 = make([]UE8M0, n)
		m.ScalesUE8M0 = Host[UE8M0](h.ScalesUE8M0)
	} else {
		h.ScalesF32 = make([]float32, n)
		m.ScalesF32 = Host[float32](h.ScalesF32)
	}
	return m, h
}

// QuantizePerToken quantizes x [rows, k] (row-major float32) to E4M3 with
// one scale per row and 128-wide K block (1×128, the activation layout):
// amax = max|x| over the block, clamped to ≥ 1e−4; scale = amax/448
// (optionally rounded up to a power of two); data = e4m3(x · (1/scale)),
// round-to-nearest-even, saturating. A short last K block is quantized on
// its own elements. It mirrors DeepGEMM deep_gemm/utils/math.py
// per_token_cast_to_fp8. Errors: a *FieldError wrapping ErrShape if rows or
// k is negative or len(x) != rows·k.
func QuantizePerToken(x []float32, rows, k int, opt QuantOptions) (*FP8Matrix, error) {
	if err := checkQuantInput(len(x), rows, k); err != nil {
		return nil, err
	}
	m, h := newQuantized(rows, k, 1, opt)
	if rows == 0 || k == 0 {
		return m, nil
	}
	kbs := m.KBlocks()
	for r := 0; r < rows; r++ {
		row := x[r*k : (r+1)*k]
		for kb := 0; kb < kbs; kb++ {
			lo, hi := kb*ScaleBlock, min((kb+1)*ScaleBlock, k)
			var amax float32
			for _, v := range row[lo:hi] {
				amax = absMax(amax, v)
			}
			sf, inv, code := blockScale(amax, opt.UE8M0)
			if opt.UE8M0 {
				h.ScalesUE8M0[r*kbs+kb] = code
			} else {
				h.ScalesF32[r*kbs+kb] = sf
			}
			for i := lo; i < hi; i++ {
				h.Data[r*k+i] = E4M3FromFloat32(row[i] * inv)
			}
		}
	}
	return m, nil
}

// QuantizePerTokenBF16 is QuantizePerToken for BF16 input x [rows, k]: the
// same scales and values as QuantizePerToken on x's float32 values (DeepEP
// tests/utils.per_token_cast_to_fp8, the quantization DeepEP's dispatch
// kernels apply on the way). Errors: as QuantizePerToken.
func QuantizePerTokenBF16(x []BF16, rows, k int, opt QuantOptions) (*FP8Matrix, error) {
	if err := checkQuantInput(len(x), rows, k); err != nil {
		return nil, err
	}
	m, h := newQuantized(rows, k, 1, opt)
	if rows == 0 || k == 0 {
		return m, nil
	}
	kbs := m.KBlocks()
	sc := h.ScalesF32
	if opt.UE8M0 {
		sc = make([]float32, kbs)
	}
	for r := 0; r < rows; r++ {
		s := sc
		if !opt.UE8M0 {
			s = sc[r*kbs : (r+1)*kbs]
		}
		QuantizeRowBF16(h.Data[r*k:(r+1)*k], s, x[r*k:(r+1)*k], opt.UE8M0)
		if opt.UE8M0 {
			for kb, v := range s {
				h.ScalesUE8M0[r*kbs+kb] = UE8M0Ceil(v) // exact: v is a power of two
			}
		}
	}
	return m, nil
}

// QuantizeRowBF16 quantizes one token row (len(row) channels) into q
// (len(row) values) and scales (ceil(len(row)/128) float32 scales) in
// place, with QuantizePerToken's rule; pow2 rounds each scale up to a power
// of two (DeepEP's round_scale). It allocates nothing: it is the inner step
// of QuantizePerTokenBF16 and of ep's FP8 dispatch. It panics if q or
// scales is too short, a programming error.
func QuantizeRowBF16(q []E4M3, scales []float32, row []BF16, pow2 bool) {
	h := len(row)
	_ = q[:h]
	_ = scales[:(h+ScaleBlock-1)/ScaleBlock]
	for blk, s := 0, 0; blk < h; blk, s = blk+ScaleBlock, s+1 {
		end := min(blk+ScaleBlock, h)
		src := row[blk:end]
		// |x| as BF16 bits orders like the values (NaN aside).
		var mx BF16
		for _, v := range src {
			mx = max(mx, v&0x7FFF)
		}
		amax := mx.Float32()
		if mx > BF16InfBits {
			amax = float32(math.NaN())
		}
		sf, inv, _ := blockScale(amax, pow2)
		encodeE4M3RowBF16(q[blk:end], src, inv)
		scales[s] = sf
	}
}

// encodeE4M3RowBF16 writes E4M3FromFloat32(src[i].Float32()·mul) into
// dst[i]: the conversion written out in the loop (no call per element).
func encodeE4M3RowBF16(dst []E4M3, src []BF16, mul float32) {
	const (
		absMask   = 0x7FFFFFFF
		inf       = 0x7F800000
		maxF32    = 0x43E00000              // 448
		minNormal = 121 << 23               // 2^-6
		denorm    = 141 << 23               // 2^14: adding it rounds to a multiple of 2^-9
		rebias    = uint32(1<<32 - 120<<23) // exponent bias 127 → 7, mod 2^32
	)
	dst = dst[:len(src)]
	for i, b := range src {
		u := math.Float32bits(math.Float32frombits(uint32(b)<<16) * mul)
		sign := uint8(u>>24) & 0x80
		a := u & absMask
		nan := a > inf
		a = min(a, maxF32)
		r := uint8((a + rebias + 0x7FFFF + (a>>20)&1) >> 20)
		if a < minNormal {
			r = uint8(math.Float32bits(math.Float32frombits(a)+math.Float32frombits(denorm)) - denorm)
		}
		if nan {
			r = 0x7F
		}
		dst[i] = E4M3(r | sign)
	}
}

// QuantizePerBlock quantizes x [rows, k] (row-major float32) to E4M3 with
// one scale per 128×128 block (the weight layout, DeepSeek-V3
// weight_scale_inv [ceil(rows/128), ceil(k/128)]): amax over the block
// (edge blocks over their own elements), clamped to ≥ 1e−4, scale =
// amax/448 (optionally a power of two), data = e4m3(x · (1/scale)). It
// mirrors DeepGEMM per_block_cast_to_fp8. Errors: a *FieldError wrapping
// ErrShape if rows or k is negative or len(x) != rows·k.
func QuantizePerBlock(x []float32, rows, k int, opt QuantOptions) (*FP8Matrix, error) {
	if err := checkQuantInput(len(x), rows, k); err != nil {
		return nil, err
	}
	m, h := newQuantized(rows, k, ScaleBlock, opt)
	if rows == 0 || k == 0 {
		return m, nil
	}
	kbs := m.KBlocks()
	for rb := 0; rb < m.ScaleRowsPerGroup(); rb++ {
		r0, r1 := rb*ScaleBlock, min((rb+1)*ScaleBlock, rows)
		for kb := 0; kb < kbs; kb++ {
			lo, hi := kb*ScaleBlock, min((kb+1)*ScaleBlock, k)
			var amax float32
			for r := r0; r < r1; r++ {
				for _, v := range x[r*k+lo : r*k+hi] {
					amax = absMax(amax, v)
				}
			}
			sf, inv, code := blockScale(amax, opt.UE8M0)
			if opt.UE8M0 {
				h.ScalesUE8M0[rb*kbs+kb] = code
			} else {
				h.ScalesF32[rb*kbs+kb] = sf
			}
			for r := r0; r < r1; r++ {
				for i := lo; i < hi; i++ {
					h.Data[r*k+i] = E4M3FromFloat32(x[r*k+i] * inv)
				}
			}
		}
	}
	return m, nil
}

// Stack concatenates single-group operands of equal Rows, K, ScaleRows and
// Format into one batch [G, Rows, K] (the B of the grouped GEMMs, the A of
// the masked one), copying into host memory. Errors: a *FieldError wrapping
// ErrShape for no operands, a nil one or a shape mismatch, the operand's own
// Check error, or one wrapping ErrNotHost.
func Stack(ms ...*FP8Matrix) (*FP8Matrix, error) {
	data, sf, su, err := stackScaled(ms)
	if err != nil {
		return nil, err
	}
	f := ms[0]
	out := &FP8Matrix{Groups: len(ms), Rows: f.Rows, K: f.K, ScaleRows: f.ScaleRows, Format: f.Format}
	out.Data = Host[E4M3](data)
	if sf != nil {
		out.ScalesF32 = Host[float32](sf)
	}
	if su != nil {
		out.ScalesUE8M0 = Host[UE8M0](su)
	}
	return out, nil
}

// Dequantize returns m's values as float32 [Groups·Rows, K] row-major:
// e4m3 value × its block's scale (E4M3 NaN gives NaN). Errors: those of
// m.Check (ErrShape, ErrScales), or one wrapping ErrNotHost.
func Dequantize(m *FP8Matrix) ([]float32, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	h, err := m.Host()
	if err != nil {
		return nil, err
	}
	g := m.NumGroups()
	out := make([]float32, g*m.Rows*m.K)
	if len(out) == 0 {
		return out, nil
	}
	for gi := 0; gi < g; gi++ {
		for r := 0; r < m.Rows; r++ {
			row := h.Row(gi, r)
			dst := out[(gi*m.Rows+r)*m.K:]
			for i, v := range row {
				dst[i] = v.Float32() * h.Scale(gi, r, i/ScaleBlock)
			}
		}
	}
	return out, nil
}
