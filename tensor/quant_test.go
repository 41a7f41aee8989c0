package tensor_test

import (
	"errors"
	"math"
	"slices"
	"testing"

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
			m, err := tensor.QuantizePerToken(c.x, 1, 128, tensor.QuantOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if m.ScaleRows != 1 || len(hostOf(m).ScalesF32) != 1 {
				t.Fatalf("scale layout %d × %d", m.ScaleRows, len(hostOf(m).ScalesF32))
			}
			if got := hostOf(m).ScalesF32[0]; math.Abs(float64(got-c.scale)) > 1e-7*float64(c.scale) {
				t.Errorf("scale = %g, want %g", got, c.scale)
			}
			if got := hostOf(m).Data[:len(c.codes)]; !slices.Equal(got, c.codes) {
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
		m, err := tensor.QuantizePerToken(block(c.amax, 300), 1, 128, tensor.QuantOptions{UE8M0: true})
		if err != nil {
			t.Fatal(err)
		}
		if m.Format != tensor.ScaleUE8M0 || hostOf(m).ScalesUE8M0[0] != c.code {
			t.Errorf("amax %g: format %v code %d, want ue8m0 %d", c.amax, m.Format, hostOf(m).ScalesUE8M0[0], c.code)
		}
		// The data are x / 2^(code−127), never beyond 448.
		want := tensor.E4M3FromFloat32(300 / c.code.Float32())
		if hostOf(m).Data[1] != want {
			t.Errorf("amax %g: code of 300 = %#x, want %#x", c.amax, hostOf(m).Data[1], want)
		}
	}
}

func TestQuantizeNaN(t *testing.T) {
	m, _ := tensor.QuantizePerToken(block(1, float32(math.NaN()), 2), 1, 128, tensor.QuantOptions{})
	if !math.IsNaN(float64(hostOf(m).ScalesF32[0])) || !hostOf(m).Data[0].IsNaN() {
		t.Fatalf("NaN block: scale %v, code %#x; want NaN", hostOf(m).ScalesF32[0], hostOf(m).Data[0])
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
	m, err := tensor.QuantizePerBlock(x, rows, k, tensor.QuantOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 2, 3, 4, 5, 100 * 4}
	for i := range want {
		want[i] = want[i] * 0.25 / 448
	}
	if len(hostOf(m).ScalesF32) != 6 {
		t.Fatalf("len(scales) = %d, want 6", len(hostOf(m).ScalesF32))
	}
	for i, w := range want {
		if got := hostOf(m).ScalesF32[i]; math.Abs(float64(got-w)) > 1e-6*float64(w) {
			t.Errorf("scale[%d] = %g, want %g", i, got, w)
		}
	}
	d, err := tensor.Dequantize(m)
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
	for _, opt := range []tensor.QuantOptions{{}, {UE8M0: true}} {
		for name, q := range map[string]func([]float32, int, int, tensor.QuantOptions) (*tensor.FP8Matrix, error){
			"token": tensor.QuantizePerToken, "block": tensor.QuantizePerBlock} {
			m, err := q(x, rows, k, opt)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := tensor.Dequantize(m)
			if diff := testutil.CalcDiff(testutil.F64(x), testutil.F64(d)); diff > 1e-3 {
				t.Errorf("%s ue8m0=%v: calc_diff(x, dequant) = %g", name, opt.UE8M0, diff)
			}
		}
	}
}

func TestQuantizeErrors(t *testing.T) {
	if _, err := tensor.QuantizePerToken(make([]float32, 10), 3, 4, tensor.QuantOptions{}); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("len mismatch: %v", err)
	}
	if _, err := tensor.QuantizePerBlock(nil, -1, 4, tensor.QuantOptions{}); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("negative rows: %v", err)
	}
	if _, err := tensor.Stack(nil); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("Stack(nil): %v", err)
	}
	if _, err := tensor.Stack(); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("empty stack: %v", err)
	}
}

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
		opt := tensor.QuantOptions{UE8M0: ue8m0}
		for _, q := range []func([]float32, int, int, tensor.QuantOptions) (*tensor.FP8Matrix, error){tensor.QuantizePerToken, tensor.QuantizePerBlock} {
			m, err := q(x, r, k, opt)
			if err != nil {
				t.Fatal(err)
			}
			d, err := tensor.Dequantize(m)
			if err != nil {
				t.Fatal(err)
			}
			for i := range x {
				sc := hostOf(m).Scale(0, i/max(k, 1), (i%max(k, 1))/128)
				tol := math.Max(math.Abs(float64(x[i]))/16, float64(sc)/512)
				if e := math.Abs(float64(d[i] - x[i])); e > tol*1.0001 {
					t.Fatalf("x[%d] = %g dequantized to %g (scale %g)", i, x[i], d[i], sc)
				}
			}
		}
	})
}

// hostOf resolves a host operand's storage to slices.
func hostOf(m *tensor.FP8Matrix) tensor.FP8Host {
	h, err := m.Host()
	if err != nil {
		panic(err)
	}
	return h
}
