package tensor

import "math"

// E2M1 is one OCP FP4 E2M1 value (the element of MXFP4/NVFP4 and of
// DeepGEMM's FP4 operands) in the low nibble of a byte: 1 sign bit (bit 3),
// 2 exponent bits (bias 1) and 1 mantissa bit. The eight magnitudes are 0,
// 0.5 (the one subnormal), 1, 1.5, 2, 3, 4 and 6; code 0x8 is −0. There is
// no infinity and no NaN. The high nibble must be zero; E2M1x2 packs two
// values per byte.
type E2M1 uint8

// E2M1 constants.
const (
	E2M1Max     = 6.0 // largest finite magnitude
	E2M1MaxBits = E2M1(0x7)
)

// e2m1Values are the magnitudes of codes 0..7.
var e2m1Values = [8]float32{0, 0.5, 1, 1.5, 2, 3, 4, 6}

// Float32 returns the exact value of e (its low nibble).
func (e E2M1) Float32() float32 {
	v := e2m1Values[e&7]
	if e&8 != 0 {
		return -v
	}
	return v
}

// E2M1FromFloat32 converts f to E2M1 with round-to-nearest-even, saturating:
// finite values beyond ±6 and ±Inf become ±6. The sign is kept (−0.1 gives
// −0, code 0x8). NaN, which E2M1 cannot hold, becomes +6 (0x7); the FP4
// quantizer marks a NaN block through its scale instead (see
// QuantizePerTokenFP4). The ties are 0.25→0, 0.75→1, 1.25→1, 1.75→2, 2.5→2,
// 3.5→4 and 5→4 (even mantissa).
func E2M1FromFloat32(f float32) E2M1 {
	u := math.Float32bits(f)
	var sign E2M1
	if u>>31 != 0 {
		sign = 8
	}
	a := math.Float32frombits(u & f32AbsMask)
	var c E2M1
	switch {
	case a != a:
		return E2M1MaxBits
	case a <= 0.25:
		c = 0
	case a < 0.75:
		c = 1
	case a <= 1.25:
		c = 2
	case a < 1.75:
		c = 3
	case a <= 2.5:
		c = 4
	case a < 3.5:
		c = 5
	case a <= 5:
		c = 6
	default:
		c = 7
	}
	return c | sign
}

// E2M1x2 is two E2M1 values packed in one byte, as DeepGEMM's FP4 operands
// store them (torch.int8 / float4_e2m1fn_x2): element 2i in the low nibble,
// element 2i+1 in the high nibble (deep_gemm/utils/math.py
// per_token_cast_to_fp4 packs codes[0] | codes[1]<<4).
type E2M1x2 uint8

// PackE2M1 packs lo (the even element) and hi (the odd one); only their
// low nibbles are used.
func PackE2M1(lo, hi E2M1) E2M1x2 { return E2M1x2(lo&0xF | (hi&0xF)<<4) }

// Lo returns the even element (the low nibble).
func (p E2M1x2) Lo() E2M1 { return E2M1(p & 0xF) }

// Hi returns the odd element (the high nibble).
func (p E2M1x2) Hi() E2M1 { return E2M1(p >> 4) }

// e2m1x2Decode holds the two float32 values of every packed byte.
var e2m1x2Decode [256][2]float32

func init() {
	for i := range e2m1x2Decode {
		p := E2M1x2(i)
		e2m1x2Decode[i] = [2]float32{p.Lo().Float32(), p.Hi().Float32()}
	}
}

// Float32s returns the two values of p, even element first.
func (p E2M1x2) Float32s() (lo, hi float32) {
	v := &e2m1x2Decode[p]
	return v[0], v[1]
}

// DecodeE2M1x2 writes the 2·len(src) values of the packed bytes src into
// dst, each multiplied by scale (exact for a power-of-two scale such as a
// UE8M0 one): dst[2i] = Lo·scale, dst[2i+1] = Hi·scale. It panics if dst
// holds fewer than 2·len(src) values.
func DecodeE2M1x2(dst []float32, src []E2M1x2, scale float32) {
	dst = dst[:2*len(src)]
	for i, p := range src {
		v := &e2m1x2Decode[p]
		dst[2*i] = v[0] * scale
		dst[2*i+1] = v[1] * scale
	}
}
