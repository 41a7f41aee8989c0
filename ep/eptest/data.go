package eptest

import (
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

// fp8Tokens quantizes the first n rows of x ([≥n][h] BF16) per token and 128 channels with the
// one quantizer (tensor.QuantizePerTokenBF16, DeepEP's
// per_token_cast_to_fp8), with power-of-two UE8M0 scales when ue8m0.
func fp8Tokens(x []tensor.BF16, n, h int, ue8m0 bool) ep.Tokens {
	m, err := tensor.QuantizePerTokenBF16(x[:n*h], n, h, tensor.QuantOptions{UE8M0: ue8m0})
	if err != nil {
		panic(err) // the generators pass consistent shapes
	}
	t, err := ep.TokensFromFP8(m)
	if err != nil {
		panic(err)
	}
	return t
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
