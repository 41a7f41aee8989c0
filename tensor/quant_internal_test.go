package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

func BenchmarkQuantizeRowBF16(b *testing.B) {
	const h = 7168
	r := rand.New(rand.NewPCG(1, 2))
	row := make([]BF16, h)
	for i := range row {
		row[i] = BF16FromFloat32(float32(r.NormFloat64()))
	}
	q := make([]E4M3, h)
	sc := make([]float32, (h+ScaleBlock-1)/ScaleBlock)
	b.SetBytes(2 * h)
	for b.Loop() {
		QuantizeRowBF16(q, sc, row, false)
	}
}

// TestEncodeE4M3RowBF16 checks the unrolled conversion against
// E4M3FromFloat32 on every BF16 input and several multipliers.
func TestEncodeE4M3RowBF16(t *testing.T) {
	src := make([]BF16, 1<<16)
	for i := range src {
		src[i] = BF16(i)
	}
	dst := make([]E4M3, len(src))
	for _, mul := range []float32{1, 448, 1.0 / 3, 3.5e-3, 1 << 20, 7.77} {
		encodeE4M3RowBF16(dst, src, mul)
		for i, b := range src {
			want := E4M3FromFloat32(b.Float32() * mul)
			if dst[i] != want && !(dst[i].IsNaN() && want.IsNaN()) {
				t.Fatalf("mul %v, bf16 %#04x: got %#02x, want %#02x", mul, i, dst[i], want)
			}
		}
	}
}

// TestQuantizeRowBF16 checks scales and values against the definition
// (amax over 128 channels, 1e-4 floor, power-of-two rounding).
func TestQuantizeRowBF16(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const h = 300
	row := make([]BF16, h)
	for i := range row {
		row[i] = BF16FromFloat32(float32(r.NormFloat64() * float64(1+i/128)))
	}
	row[5] = 0
	for _, round := range []bool{false, true} {
		q := make([]E4M3, h)
		sc := make([]float32, (h+ScaleBlock-1)/ScaleBlock)
		QuantizeRowBF16(q, sc, row, round)
		for s := range sc {
			var amax float32 = 1e-4
			for _, v := range row[s*128 : min(s*128+128, h)] {
				amax = max(amax, float32(math.Abs(float64(v.Float32()))))
			}
			want := amax / 448
			if round {
				want = UE8M0Ceil(want).Float32()
			}
			if sc[s] != want {
				t.Fatalf("round=%v block %d: scale %v, want %v", round, s, sc[s], want)
			}
			for c := s * 128; c < min(s*128+128, h); c++ {
				if w := E4M3FromFloat32(row[c].Float32() * (1 / want)); q[c] != w {
					t.Fatalf("round=%v ch %d: %#02x, want %#02x", round, c, q[c], w)
				}
			}
		}
	}
}
