package tensor

import "math"

// UE8M0 is an unsigned power-of-two scale byte: code e stands for 2^(e−127),
// 0xFF is NaN; there is no zero, no sign and no mantissa. DeepGEMM (SM100
// scale_fmt "ue8m0") and DeepEP's FP8 paths store scales in it.
type UE8M0 uint8

// UE8M0NaNBits is the NaN code.
const UE8M0NaNBits = UE8M0(0xFF)

// Float32 returns 2^(e−127) (0x00 is 2^−127, a float32 subnormal), or NaN
// for 0xFF.
func (e UE8M0) Float32() float32 {
	switch e {
	case 0xFF:
		return float32(math.NaN())
	case 0:
		return math.Float32frombits(0x00400000)
	}
	return math.Float32frombits(uint32(e) << 23)
}

// Exp returns the unbiased exponent e−127.
func (e UE8M0) Exp() int { return int(e) - 127 }

// UE8M0Ceil encodes |f| as the smallest power of two ≥ |f|: DeepGEMM's
// ceil_to_ue8m0 (2^ceil(log2|x|)) and DeepEP's round_scale rule, which never
// lets a rounded scale make a quantized value overflow. Results are clamped to
// the representable range: |f| ≤ 2^−127 (zero included) gives 0x00, |f| >
// 2^127 and ±Inf give 0xFE (2^127). NaN gives 0xFF.
func UE8M0Ceil(f float32) UE8M0 {
	if f != f {
		return UE8M0NaNBits
	}
	if math.IsInf(float64(f), 0) {
		return 0xFE
	}
	fr, exp := math.Frexp(math.Abs(float64(f))) // |f| = fr·2^exp, fr ∈ [0.5,1)
	if fr == 0 {
		return 0
	}
	e := exp // 2^exp ≥ |f|
	if fr == 0.5 {
		e = exp - 1
	}
	return clampUE8M0(e)
}

// UE8M0Nearest encodes |f| as the nearest power of two in linear distance
// (mantissa ≥ 1.5 rounds up; the tie 1.5·2^k goes up), clamped like
// UE8M0Ceil. NaN gives 0xFF.
func UE8M0Nearest(f float32) UE8M0 {
	if f != f {
		return UE8M0NaNBits
	}
	if math.IsInf(float64(f), 0) {
		return 0xFE
	}
	fr, exp := math.Frexp(math.Abs(float64(f)))
	if fr == 0 {
		return 0
	}
	e := exp - 1 // |f| = (2fr)·2^(exp−1), 2fr ∈ [1,2)
	if 2*fr >= 1.5 {
		e = exp
	}
	return clampUE8M0(e)
}

func clampUE8M0(e int) UE8M0 {
	b := e + 127
	if b > 254 {
		return 0xFE
	}
	if b < 0 {
		return 0
	}
	return UE8M0(b)
}
