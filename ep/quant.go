package ep

import (
	"math"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// quantizeFP8 quantizes one token row as upstream's LL dispatch kernel:
// per 128 channels amax = max(|x|, 1e-4), scale_inv = amax/448 (rounded up
// to a power of two with roundScale), q = e4m3(x · (1/scale_inv)), with
// tensor.E4M3FromFloat32's rounding (nearest even, saturating).
func quantizeFP8(q []tensor.E4M3, scales []float32, row []tensor.BF16, roundScale bool) {
	h := len(row)
	for blk, s := 0, 0; blk < h; blk, s = blk+ScaleBlock, s+1 {
		end := min(blk+ScaleBlock, h)
		src := row[blk:end]
		// |x| as BF16 bits orders like the values (NaN aside).
		var m tensor.BF16
		for _, v := range src {
			m = max(m, v&0x7FFF)
		}
		amax := max(m.Float32(), 1e-4)
		if m > 0x7F80 {
			amax = float32(math.NaN())
		}
		scaleInv := amax / tensor.E4M3Max
		if roundScale {
			scaleInv = tensor.UE8M0Ceil(scaleInv).Float32()
		}
		encodeE4M3Row(q[blk:end], src, 1/scaleInv)
		scales[s] = scaleInv
	}
}

// encodeE4M3Row writes E4M3FromFloat32(float32(src[i])·mul) into dst[i]:
// the conversion written out in the loop (no call per element).
func encodeE4M3Row(dst []tensor.E4M3, src []tensor.BF16, mul float32) {
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
		dst[i] = tensor.E4M3(r | sign)
	}
}
