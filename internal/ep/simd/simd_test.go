package simd

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fireflyer-go/fireflyer/tensor"
)

func randBF16(r *rand.Rand, n int) []tensor.BF16 {
	s := make([]tensor.BF16, n)
	for i := range s {
		s[i] = tensor.BF16(r.Uint32())
	}
	return s
}

func bits(a []float32) []uint32 {
	out := make([]uint32, len(a))
	for i, f := range a {
		out[i] = math.Float32bits(f)
		if f != f {
			out[i] = 0x7FC00000 // NaN payloads may differ between paths
		}
	}
	return out
}

// TestKernelsMatchGeneric checks the selected kernels against the pure-Go
// definitions bit for bit, on random bit patterns (NaN, Inf, subnormals,
// rounding ties) and lengths around the vector width.
func TestKernelsMatchGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 100, 7168} {
		src := randBF16(r, n)
		acc0 := make([]float32, n)
		for i := range acc0 {
			acc0[i] = float32(r.NormFloat64())
		}
		a, b := make([]float32, n), make([]float32, n)
		SetBF16(a, src)
		setBF16Go(b, src)
		cmp(t, "SetBF16", n, bits(a), bits(b))

		copy(a, acc0)
		copy(b, acc0)
		AddBF16(a, src)
		addBF16Go(b, src)
		cmp(t, "AddBF16", n, bits(a), bits(b))

		copy(a, acc0)
		copy(b, acc0)
		AxpyBF16(a, 0.37, src)
		axpyBF16Go(b, 0.37, src)
		cmp(t, "AxpyBF16", n, bits(a), bits(b))

		f := make([]float32, n)
		for i := range f {
			switch i % 4 {
			case 0:
				f[i] = math.Float32frombits(r.Uint32())
			case 1:
				f[i] = math.Float32frombits(r.Uint32()&0xFFFF0000 | 0x8000) // tie
			default:
				f[i] = float32(r.NormFloat64())
			}
		}
		for nr := 1; nr <= 9; nr += 4 {
			rows := make([][]tensor.BF16, nr)
			for i := range rows {
				rows[i] = randBF16(r, n)
				for j := range rows[i] {
					if r.IntN(4) != 0 {
						rows[i][j] &= 0xBFFF // mostly finite values
					}
				}
			}
			got, want := make([]tensor.BF16, n), make([]tensor.BF16, n)
			SumBF16(got, rows)
			sumBF16Go(want, rows)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("SumBF16 n=%d rows=%d i=%d: %#04x, want %#04x", n, nr, i, got[i], want[i])
				}
			}
		}
		x, y := make([]tensor.BF16, n), make([]tensor.BF16, n)
		ToBF16(x, f)
		toBF16Go(y, f)
		for i := range x {
			if x[i] != y[i] {
				t.Fatalf("ToBF16 n=%d i=%d: %#04x, want %#04x (from %#08x)", n, i, x[i], y[i], math.Float32bits(f[i]))
			}
		}
	}
}

func cmp(t *testing.T, name string, n int, a, b []uint32) {
	t.Helper()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("%s n=%d i=%d: %#08x, want %#08x", name, n, i, a[i], b[i])
		}
	}
}

func BenchmarkAddBF16(b *testing.B) {
	src := randBF16(rand.New(rand.NewPCG(1, 1)), 7168)
	for i := range src {
		src[i] &= 0x3FFF
	}
	acc := make([]float32, 7168)
	b.SetBytes(2 * 7168)
	for b.Loop() {
		AddBF16(acc, src)
	}
}

func BenchmarkAddBF16Go(b *testing.B) {
	src := randBF16(rand.New(rand.NewPCG(1, 1)), 7168)
	for i := range src {
		src[i] &= 0x3FFF
	}
	acc := make([]float32, 7168)
	b.SetBytes(2 * 7168)
	for b.Loop() {
		addBF16Go(acc, src)
	}
}
