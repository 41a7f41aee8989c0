package kernels

import (
	"math"
	"testing"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// TestDecodeE2M1Row checks every packed byte in every position of the
// unrolled loop and its tail, with per-block scales (powers of two, an
// arbitrary float32, NaN), against tensor's decoder times the scale.
func TestDecodeE2M1Row(t *testing.T) {
	forEachSet(t, func(t *testing.T, ks Set) {
		for _, sk := range []int{2, 32, 128} {
			for _, n := range []int{0, 2, 6, 30, 32, 64, 130, 512 + 2, 2 * 256} {
				src := make([]tensor.E2M1x2, n/2+3) // longer than needed: only n/2 read
				for i := range src {
					src[i] = tensor.E2M1x2(i*37 + sk)
				}
				nb := (n + sk - 1) / sk
				scales := make([]float32, nb+1)
				for b := range scales {
					scales[b] = []float32{1, 0.25, 3.3, float32(math.Ldexp(1, -126)), float32(math.NaN())}[b%5]
				}
				dst := make([]float32, n+4)
				for i := range dst {
					dst[i] = 99
				}
				ks.DecodeE2M1Row(dst[:n], src, scales, sk)
				for k := 0; k < n; k++ {
					e := src[k/2].Lo()
					if k%2 == 1 {
						e = src[k/2].Hi()
					}
					want := e.Float32() * scales[k/sk]
					if got := dst[k]; got != want && !(got != got && want != want) || math.Signbit(float64(got)) != math.Signbit(float64(want)) && want == want {
						t.Fatalf("sk=%d n=%d: dst[%d] = %v, want %v", sk, n, k, got, want)
					}
				}
				for _, v := range dst[n:] {
					if v != 99 {
						t.Fatalf("sk=%d n=%d: wrote past len(dst)", sk, n)
					}
				}
			}
		}
	})
}

func TestDecodeE2M1RowBounds(t *testing.T) {
	ks := Best()
	for _, c := range []struct {
		name       string
		n, src, sc int
		sk         int
	}{{"odd dst", 3, 2, 1, 32}, {"short src", 64, 31, 2, 32}, {"short scales", 64, 32, 1, 32}, {"sk 0", 4, 2, 1, 0}, {"odd sk", 4, 2, 4, 3}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", c.name)
				}
			}()
			ks.DecodeE2M1Row(make([]float32, c.n), make([]tensor.E2M1x2, c.src), make([]float32, c.sc), c.sk)
		}()
	}
}
