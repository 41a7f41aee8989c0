package tensor

import "math"

// E4M3 is an OCP FP8 E4M3 "fn" value (torch.float8_e4m3fn, __nv_fp8_e4m3):
// 1 sign, 4 exponent (bias 7) and 3 mantissa bits; no infinities; 0x7F and
// 0xFF are NaN; the largest finite magnitude is 448 and the smallest
// subnormal 2^-9. It is the operand type of DeepGEMM and DeepEP's FP8 paths.
type E4M3 uint8

// E4M3 constants.
const (
	E4M3Max     = 448.0 // largest finite magnitude
	E4M3MaxBits = E4M3(0x7E)
	E4M3NaNBits = E4M3(0x7F)
)

// E5M2 is an OCP FP8 E5M2 value (torch.float8_e5m2, __nv_fp8_e5m2): 1 sign,
// 5 exponent (bias 15) and 2 mantissa bits, with infinities (0x7C, 0xFC) and
// NaNs (0x7D-0x7F, 0xFD-0xFF); the largest finite magnitude is 57344 and the
// smallest subnormal 2^-16.
type E5M2 uint8

// E5M2 constants.
const (
	E5M2Max     = 57344.0 // largest finite magnitude
	E5M2MaxBits = E5M2(0x7B)
	E5M2InfBits = E5M2(0x7C)
	E5M2NaNBits = E5M2(0x7F)
)

var (
	e4m3Decode [256]float32
	e5m2Decode [256]float32
)

func init() {
	for i := 0; i < 256; i++ {
		e4m3Decode[i] = decodeE4M3(uint8(i))
		e5m2Decode[i] = decodeE5M2(uint8(i))
	}
}

// decodeE4M3 is the literal definition, used to build the table.
func decodeE4M3(b uint8) float32 {
	sign := 1.0
	if b&0x80 != 0 {
		sign = -1
	}
	exp, mant := int(b>>3)&0xF, float64(b&7)
	switch {
	case exp == 15 && mant == 7:
		return float32(math.NaN())
	case exp == 0:
		return float32(sign * mant * math.Ldexp(1, -9))
	default:
		return float32(sign * (1 + mant/8) * math.Ldexp(1, exp-7))
	}
}

// decodeE5M2 is the literal definition, used to build the table.
func decodeE5M2(b uint8) float32 {
	sign := 1.0
	if b&0x80 != 0 {
		sign = -1
	}
	exp, mant := int(b>>2)&0x1F, float64(b&3)
	switch {
	case exp == 31 && mant == 0:
		return float32(math.Inf(int(sign)))
	case exp == 31:
		return float32(math.NaN())
	case exp == 0:
		return float32(sign * mant * math.Ldexp(1, -16))
	default:
		return float32(sign * (1 + mant/4) * math.Ldexp(1, exp-15))
	}
}

// Float32 returns the exact value of e (NaN for 0x7F and 0xFF).
func (e E4M3) Float32() float32 { return e4m3Decode[e] }

// IsNaN reports whether e is one of the two NaN codes.
func (e E4M3) IsNaN() bool { return e&0x7F == 0x7F }

// Float32 returns the exact value of e.
func (e E5M2) Float32() float32 { return e5m2Decode[e] }

// IsNaN reports whether e is a NaN code.
func (e E5M2) IsNaN() bool { return e&0x7F > 0x7C }

const (
	f32AbsMask    = 0x7FFFFFFF
	f32Inf        = 0x7F800000
	e4m3MaxF32    = 0x43E00000 // 448.0
	e4m3MinNormal = 121 << 23  // 2^-6
	e4m3Denorm    = 141 << 23  // 2^14: adding it rounds to a multiple of 2^-9
	e5m2MaxF32    = 0x47600000 // 57344.0
	e5m2MinNormal = 113 << 23  // 2^-14
	e5m2Denorm    = 134 << 23  // 2^7: adding it rounds to a multiple of 2^-16
)

// E4M3FromFloat32 converts f to E4M3 with round-to-nearest-even (subnormals
// included), saturating: finite values beyond ±448 and ±Inf become ±448.
// NaN becomes NaN (0x7F or 0xFF, sign kept). This is the cast DeepGEMM's and
// DeepEP's quantizers rely on (they clamp to ±448 before casting).
func E4M3FromFloat32(f float32) E4M3 {
	u := math.Float32bits(f)
	sign := uint8(u>>24) & 0x80
	a := u & f32AbsMask
	nan := a > f32Inf
	a = min(a, e4m3MaxF32)
	// Normal range: re-bias the exponent, round the 20 dropped bits to even.
	norm := uint8((a + e4m3Rebias + 0x7FFFF + (a>>20)&1) >> 20)
	// Subnormal range: let the FPU round to a multiple of 2^-9.
	sub := uint8(math.Float32bits(math.Float32frombits(a)+math.Float32frombits(e4m3Denorm)) - e4m3Denorm)
	r := norm
	if a < e4m3MinNormal {
		r = sub
	}
	if nan {
		r = 0x7F
	}
	return E4M3(r | sign)
}

// E4M3FromFloat32Torch converts f to E4M3 bit for bit as PyTorch's
// x.to(torch.float8_e4m3fn) (c10::detail::fp8e4m3fn_from_fp32_value):
// round-to-nearest-even with no saturation: magnitudes ≥ 480 (including
// ±Inf) and NaN become NaN (0x7F with the sign of f), 448 ≤ |f| ≤ 464 rounds
// to ±448, and 464 < |f| < 480 rounds up into the NaN code as well.
func E4M3FromFloat32Torch(f float32) E4M3 {
	u := math.Float32bits(f)
	sign := uint8(u>>24) & 0x80
	a := u & f32AbsMask
	switch {
	case a >= 0x43F00000: // 480.0, ±Inf and NaN
		return E4M3(0x7F | sign)
	case a < e4m3MinNormal:
		return E4M3(uint8(math.Float32bits(math.Float32frombits(a)+math.Float32frombits(e4m3Denorm))-e4m3Denorm) | sign)
	}
	// Not clamped: 464 < |f| < 480 rounds up into the NaN code, as in torch.
	return E4M3(uint8((a+e4m3Rebias+0x7FFFF+(a>>20)&1)>>20) | sign)
}

// E5M2FromFloat32 converts f to E5M2 with round-to-nearest-even (subnormals
// included), saturating finite values beyond ±57344 to ±57344; ±Inf stays
// ±Inf and NaN becomes NaN (0x7F or 0xFF).
func E5M2FromFloat32(f float32) E5M2 {
	u := math.Float32bits(f)
	sign := uint8(u>>24) & 0x80
	a := u & f32AbsMask
	inf := a == f32Inf
	nan := a > f32Inf
	a = min(a, e5m2MaxF32)
	norm := uint8((a + e5m2Rebias + 0xFFFFF + (a>>21)&1) >> 21)
	sub := uint8(math.Float32bits(math.Float32frombits(a)+math.Float32frombits(e5m2Denorm)) - e5m2Denorm)
	r := norm
	if a < e5m2MinNormal {
		r = sub
	}
	if inf {
		r = 0x7C
	}
	if nan {
		r = 0x7F
	}
	return E5M2(r | sign)
}

// E5M2FromFloat32Torch converts f to E5M2 bit for bit as PyTorch's
// x.to(torch.float8_e5m2) (c10::detail::fp8e5m2_from_fp32_value):
// round-to-nearest-even; magnitudes ≥ 65536 and ±Inf become ±Inf (0x7C),
// NaN becomes 0x7F with the sign of f, and 61440 ≤ |f| < 65536 rounds (ties
// to even) to ±Inf as well.
func E5M2FromFloat32Torch(f float32) E5M2 {
	u := math.Float32bits(f)
	sign := uint8(u>>24) & 0x80
	a := u & f32AbsMask
	switch {
	case a > f32Inf:
		return E5M2(0x7F | sign)
	case a >= 0x47800000: // 65536.0
		return E5M2(0x7C | sign)
	case a < e5m2MinNormal:
		return E5M2(uint8(math.Float32bits(math.Float32frombits(a)+math.Float32frombits(e5m2Denorm))-e5m2Denorm) | sign)
	}
	return E5M2(uint8((a+e5m2Rebias+0xFFFFF+(a>>21)&1)>>21) | sign)
}

// Exponent re-bias terms, as uint32 two's complement: (7−127)<<23 and
// (15−127)<<23.
const (
	e4m3Rebias = uint32(1<<32 - 120<<23)
	e5m2Rebias = uint32(1<<32 - 112<<23)
)
