package gemm_test

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// block returns a 1×128 row of zeros with the given leading values.
func block(vals ...float32) []float32 {
	x := make([]float32, 128)
	copy(x, vals)
	return x
}

func TestQuantizePerTokenGoldens(t *testing.T) {
	cases := []struct {
		name  string
		x     []float32
		scale float32
		codes []tensor.E4M3 // leading codes
	}{
		{"all zero", block(), 1e-4 / 448, []tensor.E4M3{0, 0, 0}},
		{"exactly 448", block(448, -448, 1), 1, []tensor.E4M3{0x7E, 0xFE, 0x38}},
		// With scale 1: 17 is halfway between 16 (0x58) and 18 (0x59): ties
		// to even → 16; 19 between 18 and 20 (0x5A) → 20; 0.5+2^-5 is
		// halfway between 0.5 (0x30) and 0.5625 (0x31) → 0.5.
		{"RNE ties", block(448, 17, 19, 0.5+1.0/32), 1, []tensor.E4M3{0x7E, 0x58, 0x5A, 0x30}},
		// Subnormals: 2^-9 is code 1; 2^-10 ties to 0; 3·2^-10 ties to 2·2^-9;
		// 7·2^-9 is the largest subnormal, 2^-6 the smallest normal.
		{"subnormals", block(448, 1.0/512, 1.0/1024, 3.0/1024, 7.0/512, 1.0/64), 1, []tensor.E4M3{0x7E, 0x01, 0x00, 0x02, 0x07, 0x08}},
		{"scale from amax", block(2, -1, 0.5), 2.0 / 448, []tensor.E4M3{0x7E, 0xF6, 0x6E}},
		{"amax clamp", block(1e-5), 1e-4 / 448, []tensor.E4M3{tensor.E4M3FromFloat32(1e-5 * 448 / 1e-4)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := gemm.QuantizePerToken(c.x, 1, 128, gemm.QuantOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if m.ScaleRows != 1 || len(m.ScalesF32) != 1 {
				t.Fatalf("scale layout %d × %d", m.ScaleRows, len(m.ScalesF32))
			}
			if got := m.ScalesF32[0]; math.Abs(float64(got-c.scale)) > 1e-7*float64(c.scale) {
				t.Errorf("scale = %g, want %g", got, c.scale)
			}
			if got := m.Data[:len(c.codes)]; !slices.Equal(got, c.codes) {
				t.Errorf("codes = %#x, want %#x", got, c.codes)
			}
		})
	}
}

func TestQuantizeUE8M0(t *testing.T) {
	cases := []struct {
		amax float32
		code tensor.UE8M0
	}{{448, 127}, {300, 127}, {449, 128}, {1000, 129}}
	for _, c := range cases {
		m, err := gemm.QuantizePerToken(block(c.amax, 300), 1, 128, gemm.QuantOptions{UE8M0: true})
		if err != nil {
			t.Fatal(err)
		}
		if m.Format != gemm.ScaleUE8M0 || m.ScalesUE8M0[0] != c.code {
			t.Errorf("amax %g: format %v code %d, want ue8m0 %d", c.amax, m.Format, m.ScalesUE8M0[0], c.code)
		}
		// The data are x / 2^(code−127), never beyond 448.
		want := tensor.E4M3FromFloat32(300 / c.code.Float32())
		if m.Data[1] != want {
			t.Errorf("amax %g: code of 300 = %#x, want %#x", c.amax, m.Data[1], want)
		}
	}
}

func TestQuantizeNaN(t *testing.T) {
	m, _ := gemm.QuantizePerToken(block(1, float32(math.NaN()), 2), 1, 128, gemm.QuantOptions{})
	if !math.IsNaN(float64(m.ScalesF32[0])) || !m.Data[0].IsNaN() {
		t.Fatalf("NaN block: scale %v, code %#x; want NaN", m.ScalesF32[0], m.Data[0])
	}
}

func TestQuantizePerBlockLayout(t *testing.T) {
	// x [130, 257]: 2 × 3 scale blocks, edge blocks over their own elements.
	rows, k := 130, 257
	x := make([]float32, rows*k)
	for r := 0; r < rows; r++ {
		for c := 0; c < k; c++ {
			x[r*k+c] = float32((r/128)*3+c/128+1) * 0.25 // block id
		}
	}
	x[129*k+256] = -100 // the lone element of the corner block
	m, err := gemm.QuantizePerBlock(x, rows, k, gemm.QuantOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 2, 3, 4, 5, 100 * 4}
	for i := range want {
		want[i] = want[i] * 0.25 / 448
	}
	if len(m.ScalesF32) != 6 {
		t.Fatalf("len(scales) = %d, want 6", len(m.ScalesF32))
	}
	for i, w := range want {
		if got := m.ScalesF32[i]; math.Abs(float64(got-w)) > 1e-6*float64(w) {
			t.Errorf("scale[%d] = %g, want %g", i, got, w)
		}
	}
	d, err := gemm.Dequantize(m)
	if err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if i == 128*k+256 {
			continue // shares the corner block with −100: coarse on purpose
		}
		if math.Abs(float64(d[i]-x[i])) > 1e-6*math.Abs(float64(x[i])) {
			t.Fatalf("dequantized[%d] = %g, want %g", i, d[i], x[i])
		}
	}
}

func TestQuantizeRoundTripRandom(t *testing.T) {
	r := testutil.RNG(1)
	rows, k := 33, 300
	x := testutil.Normal(r, rows*k, 0, 3)
	for _, opt := range []gemm.QuantOptions{{}, {UE8M0: true}} {
		for name, q := range map[string]func([]float32, int, int, gemm.QuantOptions) (*gemm.FP8Matrix, error){
			"token": gemm.QuantizePerToken, "block": gemm.QuantizePerBlock} {
			m, err := q(x, rows, k, opt)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := gemm.Dequantize(m)
			if diff := testutil.CalcDiff(testutil.F64(x), testutil.F64(d)); diff > 1e-3 {
				t.Errorf("%s ue8m0=%v: calc_diff(x, dequant) = %g", name, opt.UE8M0, diff)
			}
		}
	}
}

func TestQuantizeErrors(t *testing.T) {
	if _, err := gemm.QuantizePerToken(make([]float32, 10), 3, 4, gemm.QuantOptions{}); !errors.Is(err, gemm.ErrShape) {
		t.Errorf("len mismatch: %v", err)
	}
	if _, err := gemm.QuantizePerBlock(nil, -1, 4, gemm.QuantOptions{}); !errors.Is(err, gemm.ErrShape) {
		t.Errorf("negative rows: %v", err)
	}
	if _, err := gemm.Stack(); !errors.Is(err, gemm.ErrShape) {
		t.Errorf("empty stack: %v", err)
	}
}

func TestPackUE8M0(t *testing.T) {
	p, err := gemm.PackUE8M0([]tensor.UE8M0{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint32{0x04030201, 0x05, 0x09080706, 0x0A}; !slices.Equal(p, want) {
		t.Fatalf("packed %#x, want %#x", p, want)
	}
	r := testutil.RNG(2)
	for _, kb := range []int{1, 3, 4, 5, 8, 57} {
		sf := make([]tensor.UE8M0, 7*kb)
		for i := range sf {
			sf[i] = tensor.UE8M0(r.IntN(255))
		}
		p, err := gemm.PackUE8M0(sf, 7, kb)
		if err != nil {
			t.Fatal(err)
		}
		u, err := gemm.UnpackUE8M0(p, 7, kb)
		if err != nil || !slices.Equal(u, sf) {
			t.Fatalf("kBlocks=%d: round trip failed (%v)", kb, err)
		}
	}
	if _, err := gemm.UnpackUE8M0(make([]uint32, 3), 2, 5); !errors.Is(err, gemm.ErrShape) {
		t.Errorf("bad packed length: %v", err)
	}
}

func TestMNMajorTMAAligned(t *testing.T) {
	// [2 groups, 3 rows, 2 cols] → [2, 2, 4].
	src := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	out, st, err := gemm.MNMajorTMAAligned(src, 2, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 3, 5, 0, 2, 4, 6, 0, 7, 9, 11, 0, 8, 10, 12, 0}
	if st != 4 || !slices.Equal(out, want) {
		t.Fatalf("got %v stride %d, want %v stride 4", out, st, want)
	}
	if gemm.TMAAlignedSize(5, 4) != 8 || gemm.TMAAlignedSize(5, 1) != 16 || gemm.TMAAlignedSize(8, 2) != 8 {
		t.Error("TMAAlignedSize")
	}
	if gemm.AlignM(0) != 0 || gemm.AlignM(1) != 128 || gemm.AlignM(129) != 256 || gemm.MAlignmentForContiguous() != 128 {
		t.Error("AlignM")
	}
	if _, _, err := gemm.MNMajorTMAAligned([]uint32{1}, 1, 2, 2); !errors.Is(err, gemm.ErrShape) {
		t.Errorf("bad length: %v", err)
	}
}

// FuzzQuantize checks the quantizers on arbitrary finite inputs:
// dequantized values are within one E4M3 step of the input.
func FuzzQuantize(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0}, uint8(1), false)
	f.Add([]byte{1, 2, 3, 4, 200, 100, 7, 8, 9}, uint8(3), true)
	f.Fuzz(func(t *testing.T, raw []byte, rows uint8, ue8m0 bool) {
		x := make([]float32, len(raw)/4)
		for i := range x {
			b := raw[4*i : 4*i+4]
			v := math.Float32frombits(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
			if v != v || math.IsInf(float64(v), 0) || math.Abs(float64(v)) > 1e30 {
				v = 1
			}
			x[i] = v
		}
		r := int(rows%8) + 1
		k := len(x) / r
		x = x[:r*k]
		opt := gemm.QuantOptions{UE8M0: ue8m0}
		for _, q := range []func([]float32, int, int, gemm.QuantOptions) (*gemm.FP8Matrix, error){gemm.QuantizePerToken, gemm.QuantizePerBlock} {
			m, err := q(x, r, k, opt)
			if err != nil {
				t.Fatal(err)
			}
			d, err := gemm.Dequantize(m)
			if err != nil {
				t.Fatal(err)
			}
			for i := range x {
				sc := m.Scale(0, i/max(k, 1), (i%max(k, 1))/128)
				tol := math.Max(math.Abs(float64(x[i]))/16, float64(sc)/512)
				if e := math.Abs(float64(d[i] - x[i])); e > tol*1.0001 {
					t.Fatalf("x[%d] = %g dequantized to %g (scale %g)", i, x[i], d[i], sc)
				}
			}
		}
	})
}
