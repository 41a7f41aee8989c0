package eptest

import (
	"math"
	"math/rand/v2"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Encodings of dispatched tokens.
const (
	encBF16 = iota
	encFP8
	encUE8M0
)

// PerTokenCastToFP8 quantizes x ([n][h] BF16) as DeepEP's
// tests/utils.per_token_cast_to_fp8: per token and 128 channels,
// amax = max(|x|, 1e-4), scale = amax/448, q = e4m3(x·448/amax). With ue8m0
// the scale is rounded up to a power of two first and returned as exponent
// bytes. It returns the FP8 values and either float32 or UE8M0 scales.
func PerTokenCastToFP8(x []tensor.BF16, n, h int, ue8m0 bool) ([]tensor.E4M3, []float32, []tensor.UE8M0) {
	ns := ep.NumScales(h)
	q := make([]tensor.E4M3, n*h)
	var sf []float32
	var su []tensor.UE8M0
	if ue8m0 {
		su = make([]tensor.UE8M0, n*ns)
	} else {
		sf = make([]float32, n*ns)
	}
	row := make([]float32, h)
	for t := 0; t < n; t++ {
		tensor.DecodeBF16(row, x[t*h:(t+1)*h])
		for s := 0; s < ns; s++ {
			blk := row[s*128 : min((s+1)*128, h)]
			amax := float32(1e-4)
			for _, v := range blk {
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			scale := amax / 448
			if ue8m0 {
				u := tensor.UE8M0Ceil(scale)
				su[t*ns+s] = u
				scale = u.Float32()
			} else {
				sf[t*ns+s] = scale
			}
			tensor.EncodeE4M3Scaled(q[t*h+s*128:t*h+s*128+len(blk)], blk, 1/scale)
		}
	}
	return q, sf, su
}

// dequant returns row i of x as float32 (FP8 rows multiplied by their scales).
func dequant(x ep.Tokens, i int, dst []float32) {
	h := x.Hidden
	if x.BF16 != nil {
		tensor.DecodeBF16(dst, x.BF16[i*h:(i+1)*h])
		return
	}
	tensor.DecodeE4M3(dst, x.FP8[i*h:(i+1)*h])
	ns := ep.NumScales(h)
	for c := range dst[:h] {
		var s float32
		if x.Scales != nil {
			s = x.Scales[i*ns+c/128]
		} else {
			s = x.ScalesUE8M0[i*ns+c/128].Float32()
		}
		dst[c] *= s
	}
}

// randomTopK draws n rows of k distinct experts out of e; with minusOne,
// every 7th row is all −1 and about a tenth of the other entries are −1.
func randomTopK(r *rand.Rand, n, k, e int, minusOne bool) []int32 {
	idx := make([]int32, n*k)
	perm := make([]int32, e)
	for i := range perm {
		perm[i] = int32(i)
	}
	for t := 0; t < n; t++ {
		for j := 0; j < k; j++ {
			p := j + r.IntN(e-j)
			perm[j], perm[p] = perm[p], perm[j]
			idx[t*k+j] = perm[j]
			if minusOne && r.IntN(10) == 0 {
				idx[t*k+j] = -1
			}
		}
		if minusOne && t%7 == 3 {
			for j := 0; j < k; j++ {
				idx[t*k+j] = -1
			}
		}
	}
	return idx
}

func bf16Slice(f []float32) []tensor.BF16 {
	out := make([]tensor.BF16, len(f))
	for i, v := range f {
		out[i] = tensor.BF16FromFloat32Torch(v)
	}
	return out
}

func calcDiff(x, y []float64) float64 { return testutil.CalcDiffShifted(x, y) }
