package kernels

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

// TestBF16MatchGeneric checks the BF16 combine kernels of every level
// against the generic twins bit for bit, on random bit patterns (NaN, Inf,
// subnormals, rounding ties) and lengths around the vector width.
func TestBF16MatchGeneric(t *testing.T) { forEachSet(t, testBF16MatchGeneric) }

func testBF16MatchGeneric(t *testing.T, ks Set) {
	var gen Set
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 100, 7168} {
		src := randBF16(r, n)
		acc0 := make([]float32, n)
		for i := range acc0 {
			acc0[i] = float32(r.NormFloat64())
		}
		a, b := make([]float32, n), make([]float32, n)
		copy(a, acc0)
		copy(b, acc0)
		ks.AxpyBF16(a, 0.37, src)
		gen.AxpyBF16(b, 0.37, src)
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
			ks.SumBF16(got, rows)
			gen.SumBF16(want, rows)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("SumBF16 n=%d rows=%d i=%d: %#04x, want %#04x", n, nr, i, got[i], want[i])
				}
			}
		}
		x, y := make([]tensor.BF16, n), make([]tensor.BF16, n)
		ks.ToBF16(x, f)
		gen.ToBF16(y, f)
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

// TestSumBF16Short checks the documented panic on a row shorter than dst
// and the zeroing with no rows.
func TestSumBF16Short(t *testing.T) {
	dst := []tensor.BF16{1, 2, 3}
	Best().SumBF16(dst, nil)
	if dst[0] != 0 || dst[1] != 0 || dst[2] != 0 {
		t.Fatalf("no rows: dst = %v, want zeros", dst)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("short row: no panic")
		}
	}()
	Best().SumBF16(dst, [][]tensor.BF16{{1, 2}})
}

// BenchmarkSumBF16 sums 6 rows of 7168 BF16 (a token reaching 6 ranks)
// with the best kernels; BenchmarkSumBF16Go with the generic twin.
func BenchmarkSumBF16(b *testing.B)   { benchSum(b, Best()) }
func BenchmarkSumBF16Go(b *testing.B) { benchSum(b, Set{}) }

func benchSum(b *testing.B, ks Set) {
	r := rand.New(rand.NewPCG(1, 1))
	rows := make([][]tensor.BF16, 6)
	for i := range rows {
		rows[i] = randBF16(r, 7168)
		for j := range rows[i] {
			rows[i][j] &= 0x3FFF
		}
	}
	dst := make([]tensor.BF16, 7168)
	b.SetBytes(6 * 2 * 7168)
	for b.Loop() {
		ks.SumBF16(dst, rows)
	}
}
