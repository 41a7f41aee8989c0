package tensor_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fireflyer-go/fireflyer/tensor"
)

func mnHost(t *testing.T, m *tensor.FP8MNMatrix) tensor.FP8MNHost {
	t.Helper()
	h, err := m.Host()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func randVals(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// TestQuantizePerChannelIsTransposedPerToken: per-channel quantization of
// x [k, mn] is exactly per-token quantization of xᵀ [mn, k], transposed.
func TestQuantizePerChannelIsTransposedPerToken(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, sh := range [][2]int{{128, 5}, {300, 7}, {1, 1}, {0, 3}, {256, 0}, {129, 130}} {
		for _, ue := range []bool{false, true} {
			k, mn := sh[0], sh[1]
			x := randVals(r, k*mn)
			xt := make([]float32, len(x))
			tensor.TransposeInto(xt, k, x, mn, k, mn)
			opt := tensor.QuantOptions{UE8M0: ue}
			pc, err := tensor.QuantizePerChannel(x, k, mn, opt)
			if err != nil {
				t.Fatal(err)
			}
			if err := pc.Check(); err != nil {
				t.Fatal(err)
			}
			pt, err := tensor.QuantizePerToken(xt, mn, k, opt)
			if err != nil {
				t.Fatal(err)
			}
			want, err := tensor.ToMNMajor(pt)
			if err != nil {
				t.Fatal(err)
			}
			g, w := mnHost(t, pc), mnHost(t, want)
			if !slices.Equal(g.Data, w.Data) || !slices.Equal(g.ScalesF32, w.ScalesF32) || !slices.Equal(g.ScalesUE8M0, w.ScalesUE8M0) {
				t.Fatalf("k=%d mn=%d ue8m0=%v: per-channel differs from transposed per-token", k, mn, ue)
			}
			// Dequantized values agree with the K-major operand's.
			dk, _ := tensor.Dequantize(pt)
			dm, err := tensor.DequantizeMN(pc)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(dk, dm) {
				t.Fatalf("k=%d mn=%d: DequantizeMN differs", k, mn)
			}
		}
	}
}

// TestMNMajorRoundTrip: ToKMajor(ToMNMajor(m)) is m, bit for bit, for
// per-token and per-block operands with strides and short blocks.
func TestMNMajorRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, sh := range [][2]int{{200, 300}, {1, 129}, {129, 1}, {0, 5}} {
		rows, k := sh[0], sh[1]
		x := randVals(r, rows*k)
		for _, q := range []func([]float32, int, int, tensor.QuantOptions) (*tensor.FP8Matrix, error){tensor.QuantizePerToken, tensor.QuantizePerBlock} {
			m, _ := q(x, rows, k, tensor.QuantOptions{})
			mn, err := tensor.ToMNMajor(m)
			if err != nil {
				t.Fatal(err)
			}
			h := mnHost(t, mn)
			mh := hostOf(m)
			for i := 0; i < rows; i++ {
				for j := 0; j < k; j++ {
					if h.At(i, j) != mh.Row(0, i)[j] || h.Scale(i, j/128) != mh.Scale(0, i, j/128) {
						t.Fatalf("[%d,%d]: element or scale moved", i, j)
					}
				}
			}
			back, err := tensor.ToKMajor(mn)
			if err != nil {
				t.Fatal(err)
			}
			bh := hostOf(back)
			if !slices.Equal(bh.Data, mh.Data) || !slices.Equal(bh.ScalesF32, mh.ScalesF32) || back.ScaleRows != m.ScaleRows {
				t.Fatalf("rows=%d k=%d: round trip differs", rows, k)
			}
		}
	}
}

func TestFP8MNMatrixCheck(t *testing.T) {
	good := func() *tensor.FP8MNMatrix {
		return &tensor.FP8MNMatrix{MN: 3, K: 130, Data: tensor.HostOf(make([]tensor.E4M3, 390)), ScaleMN: 1,
			ScalesF32: tensor.HostOf(make([]float32, 6))}
	}
	if err := good().Check(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		mod  func(m *tensor.FP8MNMatrix)
		want error
	}{
		{"negative", func(m *tensor.FP8MNMatrix) { m.K = -1 }, tensor.ErrShape},
		{"stride", func(m *tensor.FP8MNMatrix) { m.Stride = 2 }, tensor.ErrShape},
		{"short data", func(m *tensor.FP8MNMatrix) { m.Data = tensor.HostOf(make([]tensor.E4M3, 389)) }, tensor.ErrShape},
		{"scale mn", func(m *tensor.FP8MNMatrix) { m.ScaleMN = 64 }, tensor.ErrScales},
		{"scale len", func(m *tensor.FP8MNMatrix) { m.ScalesF32 = tensor.HostOf(make([]float32, 5)) }, tensor.ErrScales},
		{"format", func(m *tensor.FP8MNMatrix) { m.Format = 9 }, tensor.ErrScales},
		{"ue8m0 missing", func(m *tensor.FP8MNMatrix) { m.Format = tensor.ScaleUE8M0 }, tensor.ErrScales},
		{"huge", func(m *tensor.FP8MNMatrix) { m.K, m.MN = math.MaxInt/2, math.MaxInt/2 }, tensor.ErrShape},
	}
	for _, c := range cases {
		m := good()
		c.mod(m)
		if err := m.Check(); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	var nilM *tensor.FP8MNMatrix
	if err := nilM.Check(); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("nil: %v", err)
	}
	if _, err := tensor.QuantizePerChannel(make([]float32, 5), 2, 3, tensor.QuantOptions{}); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("QuantizePerChannel bad len: %v", err)
	}
	if _, err := tensor.ToKMajor(&tensor.FP8MNMatrix{MN: 1, K: 1}); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("ToKMajor bad: %v", err)
	}
}

func FuzzQuantizePerChannel(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, uint8(2), false)
	f.Add([]byte{255, 0, 128, 64}, uint8(1), true)
	f.Fuzz(func(t *testing.T, raw []byte, cols uint8, ue bool) {
		mn := int(cols%5) + 1
		k := len(raw) / mn
		x := make([]float32, k*mn)
		for i := range x {
			x[i] = float32(int8(raw[i])) / 8
		}
		m, err := tensor.QuantizePerChannel(x, k, mn, tensor.QuantOptions{UE8M0: ue})
		if err != nil {
			t.Fatal(err)
		}
		d, err := tensor.DequantizeMN(m)
		if err != nil {
			t.Fatal(err)
		}
		h := mnHost(t, m)
		for i := 0; i < mn; i++ {
			for j := 0; j < k; j++ {
				v, got := x[j*mn+i], d[i*k+j]
				tol := math.Max(math.Abs(float64(v))/16, float64(h.Scale(i, j/128))/512)
				if math.Abs(float64(got-v)) > tol*1.0001 {
					t.Fatalf("x[%d,%d] = %g dequantized to %g", j, i, v, got)
				}
			}
		}
	})
}

func checkTranspose[T comparable](t *testing.T, name string, gen func(i int) T) {
	for _, sh := range [][2]int{{0, 0}, {1, 1}, {3, 5}, {8, 8}, {9, 17}, {64, 64}, {70, 131}, {131, 70}, {200, 8}, {130, 257}} {
		rows, cols := sh[0], sh[1]
		ss, ds := cols+3, rows+1
		src := make([]T, max(rows*ss, 1))
		for i := range src {
			src[i] = gen(i)
		}
		dst := make([]T, max(cols*ds, 1))
		tensor.TransposeInto(dst, ds, src, ss, rows, cols)
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				if dst[c*ds+r] != src[r*ss+c] {
					t.Fatalf("%s %dx%d: dst[%d,%d] != src[%d,%d]", name, rows, cols, c, r, r, c)
				}
			}
		}
	}
}

// TestTransposeInto checks the 8×8 byte, 4×4 half-word and generic paths
// on shapes with remainders, with row strides wider than the rows.
func TestTransposeInto(t *testing.T) {
	checkTranspose(t, "E4M3", func(i int) tensor.E4M3 { return tensor.E4M3(i*7 + i>>8) })
	checkTranspose(t, "UE8M0", func(i int) tensor.UE8M0 { return tensor.UE8M0(i*13 + 1) })
	checkTranspose(t, "BF16", func(i int) tensor.BF16 { return tensor.BF16(i*40503 + 7) })
	checkTranspose(t, "float32", func(i int) float32 { return float32(i) })
}

// BenchmarkTransposeInto: 4096×4096 operands (the k-grouped GEMMs' per-group
// size), whose power-of-two strides are the hard case.
func BenchmarkTransposeInto(b *testing.B) {
	const r, c = 4096, 4096
	b.Run("E4M3", func(b *testing.B) {
		src, dst := make([]tensor.E4M3, r*c), make([]tensor.E4M3, r*c)
		for i := range src {
			src[i] = tensor.E4M3(i) // no zero pages
		}
		tensor.TransposeInto(dst, r, src, c, r, c) // dst faulted in
		for b.Loop() {
			tensor.TransposeInto(dst, r, src, c, r, c)
		}
		b.SetBytes(r * c)
	})
	b.Run("BF16", func(b *testing.B) {
		src, dst := make([]tensor.BF16, r*c), make([]tensor.BF16, r*c)
		for i := range src {
			src[i] = tensor.BF16(i)
		}
		tensor.TransposeInto(dst, r, src, c, r, c)
		for b.Loop() {
			tensor.TransposeInto(dst, r, src, c, r, c)
		}
		b.SetBytes(2 * r * c)
	})
}
