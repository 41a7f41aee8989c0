package kernels

import (
	"math"
	"math/rand/v2"
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

// TestDecodeE2M1RowTwin compares every level with the pure-Go twin bit for
// bit: every byte value at every offset of a 16-element step, random rows
// of odd byte counts, every block size the callers use (32, 128) and others
// (2, 6, 16, 48), and scales of every kind (powers of two, arbitrary,
// negative, ±0, subnormal, huge enough to overflow, ±Inf, quiet and
// signalling NaNs with payloads).
func TestDecodeE2M1RowTwin(t *testing.T) {
	specials := []float32{1, 0.25, 3.3, -1.7, 0, float32(math.Copysign(0, -1)), float32(math.Ldexp(1, -130)),
		float32(math.Ldexp(1, 127)), 1e38, float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0x7FC00001), math.Float32frombits(0xFF812345), math.Float32frombits(0x7F800001)}
	rng := rand.New(rand.NewPCG(23, 4))
	forEachSet(t, func(t *testing.T, ks Set) {
		for _, sk := range []int{2, 6, 16, 32, 48, 128} {
			for _, n := range []int{2, 14, 16, 18, 30, 34, 62, 126, 130, 250, 256 + 16, 2*256 + 2, 1030, 4096 + 30} {
				for rep := 0; rep < 3; rep++ {
					src := make([]tensor.E2M1x2, n/2)
					for i := range src {
						switch rep {
						case 0: // every byte value, shifted by the step offset
							src[i] = tensor.E2M1x2(i + n/2)
						default:
							src[i] = tensor.E2M1x2(rng.Uint32())
						}
					}
					scales := make([]float32, (n+sk-1)/sk)
					for b := range scales {
						if rep == 2 {
							scales[b] = math.Float32frombits(rng.Uint32())
						} else {
							scales[b] = specials[(b+n)%len(specials)]
						}
					}
					want := make([]float32, n)
					decodeE2M1Go(want, src, scales, sk)
					got := make([]float32, n+16)
					for i := range got {
						got[i] = 99
					}
					ks.DecodeE2M1Row(got[:n], src, scales, sk)
					for k := range want {
						if math.Float32bits(got[k]) != math.Float32bits(want[k]) {
							t.Fatalf("sk=%d n=%d rep=%d: dst[%d] = %#x, twin %#x (byte %#x, scale %#x)", sk, n, rep, k,
								math.Float32bits(got[k]), math.Float32bits(want[k]), src[k/2], math.Float32bits(scales[k/sk]))
						}
					}
					for _, v := range got[n:] {
						if v != 99 {
							t.Fatalf("sk=%d n=%d: wrote past len(dst)", sk, n)
						}
					}
				}
			}
		}
	})
}

// TestDecodeE2M1AllBytes checks, for every byte value, both decoded
// elements against tensor's E2M1 decoder times the scale at every level,
// with the byte at each of the 8 byte positions of a 16-element step.
func TestDecodeE2M1AllBytes(t *testing.T) {
	forEachSet(t, func(t *testing.T, ks Set) {
		const n = 256 * 2
		for shift := 0; shift < 8; shift++ {
			src := make([]tensor.E2M1x2, n/2+8)
			for i := range src {
				src[i] = tensor.E2M1x2(i - shift)
			}
			src = src[:n/2]
			scales := []float32{0.5, 3, 1.25, -6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
			dst := make([]float32, n)
			ks.DecodeE2M1Row(dst, src, scales, 32)
			for k, v := range dst {
				e := src[k/2].Lo()
				if k%2 == 1 {
					e = src[k/2].Hi()
				}
				if want := e.Float32() * scales[k/32]; math.Float32bits(v) != math.Float32bits(want) {
					t.Fatalf("shift %d: dst[%d] (byte %#x) = %v, want %v", shift, k, src[k/2], v, want)
				}
			}
		}
	})
}

// BenchmarkDecodeE2M1Row decodes one K=7168 row with 1×32 scales per level.
func BenchmarkDecodeE2M1Row(b *testing.B) {
	const k = 7168
	src := make([]tensor.E2M1x2, k/2)
	for i := range src {
		src[i] = tensor.E2M1x2(i * 37)
	}
	scales := make([]float32, k/32)
	for i := range scales {
		scales[i] = float32(math.Ldexp(1, i%7-3))
	}
	dst := make([]float32, k)
	for _, ks := range sets() {
		b.Run(ks.String(), func(b *testing.B) {
			b.SetBytes(k * 4)
			for b.Loop() {
				ks.DecodeE2M1Row(dst, src, scales, 32)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/k, "ns/elem")
		})
	}
}
