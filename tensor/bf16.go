package tensor

import "math"

// BF16 is a bfloat16 value: the top 16 bits of an IEEE binary32 (1 sign,
// 8 exponent, 7 mantissa bits), as torch.bfloat16 and __nv_bfloat16.
type BF16 uint16

// BF16 special values.
const (
	BF16MaxBits BF16 = 0x7F7F // largest finite, ≈ 3.3895e38
	BF16InfBits BF16 = 0x7F80 // +Inf
	BF16NaNBits BF16 = 0x7FC0 // canonical quiet NaN (PyTorch's)
)

// Float32 returns the exact float32 value of b.
func (b BF16) Float32() float32 { return math.Float32frombits(uint32(b) << 16) }

// IsNaN reports whether b is a NaN.
func (b BF16) IsNaN() bool { return b&0x7FFF > 0x7F80 }

// BF16FromFloat32Torch converts f to bfloat16 with round-to-nearest-even,
// exactly as PyTorch's c10::BFloat16 constructor (round_to_nearest_even in
// c10/util/BFloat16.h): NaN becomes 0x7FC0, finite values too large round to
// ±Inf, infinities stay infinite.
func BF16FromFloat32Torch(f float32) BF16 {
	u := math.Float32bits(f)
	if u&0x7FFFFFFF > 0x7F800000 {
		return BF16NaNBits
	}
	u += 0x7FFF + (u>>16)&1
	return BF16(u >> 16)
}

// BF16FromFloat32 converts f to bfloat16 with round-to-nearest-even,
// saturating: finite values beyond the largest bfloat16 become ±BF16Max
// instead of ±Inf. Infinities stay infinite and NaN stays NaN (sign kept,
// payload quieted).
func BF16FromFloat32(f float32) BF16 {
	u := math.Float32bits(f)
	a := u & 0x7FFFFFFF
	if a >= 0x7F800000 {
		if a == 0x7F800000 {
			return BF16(u >> 16)
		}
		return BF16(u>>16) | 0x0040
	}
	r := u + 0x7FFF + (u>>16)&1
	if r&0x7FFFFFFF >= 0x7F800000 {
		return BF16(u>>16)&0x8000 | BF16MaxBits
	}
	return BF16(r >> 16)
}
