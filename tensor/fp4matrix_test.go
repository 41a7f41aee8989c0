package tensor_test

import (
	"errors"
	"math"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

func fp4Host(t *testing.T, m *tensor.FP4Matrix) tensor.FP4Host {
	t.Helper()
	h, err := m.Host()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestQuantizePerTokenFP4Goldens checks scales and codes of hand-computed
// rows: amax/6 scales, RNE codes, the 1e-4 clamp, the nibble order.
func TestQuantizePerTokenFP4Goldens(t *testing.T) {
	// One row of 64 elements, gran 32: block 0 has amax 6 (scale 1), block 1
	// amax 3 (scale 0.5).
	x := make([]float32, 64)
	copy(x, []float32{6, -6, 0.75, 1.25, 1.75, 2.5, 3.5, 5, -0.1, 0.26})
	copy(x[32:], []float32{3, -1.5, 0.375, 0.1})
	m, err := tensor.QuantizePerTokenFP4(x, 1, 64, 32, tensor.QuantOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := fp4Host(t, m)
	if m.ScaleK != 32 || m.Format != tensor.ScaleF32 || len(h.ScalesF32) != 2 || len(h.Data) != 32 {
		t.Fatalf("layout ScaleK=%d format=%v scales=%d bytes=%d", m.ScaleK, m.Format, len(h.ScalesF32), len(h.Data))
	}
	if h.ScalesF32[0] != 1 || h.ScalesF32[1] != 0.5 {
		t.Fatalf("scales %v, want [1 0.5]", h.ScalesF32)
	}
	// 6→7, −6→F | 0.75→2, 1.25→2 | 1.75→4, 2.5→4 | 3.5→6, 5→6 | −0.1→8, 0.26→1
	want := []tensor.E2M1x2{0xF7, 0x22, 0x44, 0x66, 0x18}
	for i, w := range want {
		if h.Data[i] != w {
			t.Errorf("byte %d = %#02x, want %#02x", i, h.Data[i], w)
		}
	}
	// Block 1 at scale 0.5: 3→6 (7), −1.5→−3 (D) | 0.375→0.75→1 (2), 0.1→0.2→0 (0)
	if h.Data[16] != 0xD7 || h.Data[17] != 0x02 {
		t.Errorf("block 1 bytes %#02x %#02x, want 0xD7 0x02", h.Data[16], h.Data[17])
	}
	// All-zero block: the clamp gives scale 1e-4/6.
	z, _ := tensor.QuantizePerTokenFP4(make([]float32, 128), 1, 128, 128, tensor.QuantOptions{})
	if got := fp4Host(t, z).ScalesF32[0]; got != float32(1e-4)/6 {
		t.Errorf("zero block scale %g, want %g", got, float32(1e-4)/6)
	}
}

// TestQuantizePerTokenFP4UE8M0 checks the power-of-two scales (UE8M0Ceil of
// amax/6, DeepGEMM ceil_to_ue8m0) and that no code overflows.
func TestQuantizePerTokenFP4UE8M0(t *testing.T) {
	cases := []struct {
		amax float32
		code tensor.UE8M0
	}{{6, 127}, {3, 126}, {6.1, 128}, {12, 128}, {13, 129}, {1e-9, tensor.UE8M0Ceil(float32(1e-4) / 6)}}
	for _, c := range cases {
		x := make([]float32, 32)
		x[0], x[1] = c.amax, -c.amax/2
		m, err := tensor.QuantizePerTokenFP4(x, 1, 32, 32, tensor.QuantOptions{UE8M0: true})
		if err != nil {
			t.Fatal(err)
		}
		h := fp4Host(t, m)
		if m.Format != tensor.ScaleUE8M0 || h.ScalesUE8M0[0] != c.code {
			t.Errorf("amax %g: format %v code %d, want ue8m0 %d", c.amax, m.Format, h.ScalesUE8M0[0], c.code)
		}
		s := c.code.Float32()
		if want := tensor.PackE2M1(tensor.E2M1FromFloat32(c.amax/s), tensor.E2M1FromFloat32(-c.amax/2/s)); h.Data[0] != want {
			t.Errorf("amax %g: byte %#02x, want %#02x", c.amax, h.Data[0], want)
		}
	}
}

// TestQuantizePerTokenFP4RoundTrip quantizes randn rows (K not a multiple
// of the granularity) and checks every dequantized value against the
// float64 oracle: the nearest E2M1 multiple of its block's scale.
func TestQuantizePerTokenFP4RoundTrip(t *testing.T) {
	r := testutil.RNG(3)
	for _, gran := range []int{32, 128} {
		for _, ue := range []bool{false, true} {
			rows, k := 5, 300
			x := testutil.Normal(r, rows*k, 0, 2)
			m, err := tensor.QuantizePerTokenFP4(x, rows, k, gran, tensor.QuantOptions{UE8M0: ue})
			if err != nil {
				t.Fatal(err)
			}
			d, err := tensor.DequantizeFP4(m)
			if err != nil {
				t.Fatal(err)
			}
			h := fp4Host(t, m)
			for i, v := range x {
				row, col := i/k, i%k
				s := float64(h.Scale(0, row, col/gran))
				q := float64(tensor.E2M1FromFloat32(float32(float64(v)/s)).Float32()) * s
				if float64(d[i]) != q && math.Abs(float64(d[i])-q) > 1e-6*math.Abs(q) {
					t.Fatalf("gran %d ue8m0 %v: x[%d]=%v dequantizes to %v, oracle %v", gran, ue, i, v, d[i], q)
				}
				if math.Abs(float64(d[i])-float64(v)) > 0.5*s*2+1e-9 { // half the widest code gap (4→6) at scale s
					t.Fatalf("x[%d]=%v dequantizes to %v at scale %v", i, v, d[i], s)
				}
			}
			if ue {
				// The power-of-two scale never lets a code saturate below amax.
				for i, v := range x {
					if s := h.Scale(0, i/k, (i%k)/gran); math.Abs(float64(v))/float64(s) > tensor.E2M1Max*(1+1e-6) {
						t.Fatalf("x[%d]=%v over scale %v exceeds 6", i, v, s)
					}
				}
			}
		}
	}
}

func TestQuantizePerTokenFP4NaN(t *testing.T) {
	x := make([]float32, 64)
	x[40] = float32(math.NaN())
	for _, ue := range []bool{false, true} {
		m, err := tensor.QuantizePerTokenFP4(x, 1, 64, 32, tensor.QuantOptions{UE8M0: ue})
		if err != nil {
			t.Fatal(err)
		}
		h := fp4Host(t, m)
		if s0, s1 := h.Scale(0, 0, 0), h.Scale(0, 0, 1); s0 != s0 || s1 == s1 {
			t.Fatalf("ue8m0 %v: scales %v %v, want finite then NaN", ue, s0, s1)
		}
		d, _ := tensor.DequantizeFP4(m)
		if d[0] != 0 || !math.IsNaN(float64(d[40])) {
			t.Fatalf("ue8m0 %v: dequantized %v %v, want 0 and NaN", ue, d[0], d[40])
		}
	}
}

func TestQuantizePerTokenFP4Errors(t *testing.T) {
	cases := []struct {
		n, rows, k, gran int
		want             error
	}{
		{6, 2, 3, 32, tensor.ErrShape},  // odd k
		{5, 2, 4, 32, tensor.ErrShape},  // len mismatch
		{0, -1, 4, 32, tensor.ErrShape}, // negative rows
		{8, 2, 4, 64, tensor.ErrScales}, // granularity
		{8, 2, 4, 0, tensor.ErrScales},  // granularity
		{0, 0, 0, 128, nil},             // empty is fine
		{4, 1, 4, 128, nil},             // K < gran
		{256, 1, 256, 32, nil},          // 8 blocks
		{2, 1, 2, 32, nil},              // the smallest non-empty row
		{130, 1, 130, 128, nil},         // a 2-element tail block
		{260, 2, 130, 32, nil},          // a 2-element tail block at gran 32
		{1 << 10, 1 << 3, 1 << 7, 32, nil},
	}
	for _, c := range cases {
		m, err := tensor.QuantizePerTokenFP4(make([]float32, c.n), c.rows, c.k, c.gran, tensor.QuantOptions{})
		if c.want == nil {
			if err != nil {
				t.Errorf("%+v: %v", c, err)
			} else if err := m.Check(); err != nil {
				t.Errorf("%+v: result fails Check: %v", c, err)
			}
			continue
		}
		var fe *tensor.FieldError
		if !errors.Is(err, c.want) || !errors.As(err, &fe) {
			t.Errorf("%+v: err %v, want a *FieldError wrapping %v", c, err, c.want)
		}
	}
}

func TestFP4MatrixCheck(t *testing.T) {
	good := func() *tensor.FP4Matrix {
		return &tensor.FP4Matrix{Groups: 2, Rows: 3, K: 66, ScaleK: 32,
			Data: tensor.Host[tensor.E2M1x2](make([]tensor.E2M1x2, 2*3*33)), ScalesF32: tensor.Host[float32](make([]float32, 2*3*3))}
	}
	if err := good().Check(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		mod   func(m *tensor.FP4Matrix)
		field string
		want  error
	}{
		{"nil", nil, "", tensor.ErrShape},
		{"groups", func(m *tensor.FP4Matrix) { m.Groups = -1 }, "Groups", tensor.ErrShape},
		{"rows", func(m *tensor.FP4Matrix) { m.Rows = -1 }, "", tensor.ErrShape},
		{"odd K", func(m *tensor.FP4Matrix) { m.K = 65 }, "K", tensor.ErrShape},
		{"stride", func(m *tensor.FP4Matrix) { m.Stride = 32 }, "Stride", tensor.ErrShape},
		{"data", func(m *tensor.FP4Matrix) { m.Data = tensor.Host[tensor.E2M1x2](make([]tensor.E2M1x2, 197)) }, "Data", tensor.ErrShape},
		{"huge", func(m *tensor.FP4Matrix) { m.Rows = 1 << 40; m.Stride = 1 << 20 }, "", tensor.ErrShape},
		{"scaleK", func(m *tensor.FP4Matrix) { m.ScaleK = 16 }, "ScaleK", tensor.ErrScales},
		{"scales", func(m *tensor.FP4Matrix) { m.ScalesF32 = tensor.Host[float32](make([]float32, 17)) }, "ScalesF32", tensor.ErrScales},
		{"ue8m0", func(m *tensor.FP4Matrix) { m.Format = tensor.ScaleUE8M0 }, "ScalesUE8M0", tensor.ErrScales},
		{"format", func(m *tensor.FP4Matrix) { m.Format = 7 }, "Format", tensor.ErrScales},
	}
	for _, c := range cases {
		var m *tensor.FP4Matrix
		if c.mod != nil {
			m = good()
			c.mod(m)
		}
		err := m.Check()
		var fe *tensor.FieldError
		if !errors.Is(err, c.want) || !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: %v, want field %q wrapping %v", c.name, err, c.field, c.want)
		}
	}
	// A strided batch: rows 40 bytes apart, the last row needs only K/2.
	m := good()
	m.Stride = 40
	m.Data = tensor.Host[tensor.E2M1x2](make([]tensor.E2M1x2, 5*40+33))
	if err := m.Check(); err != nil {
		t.Fatalf("strided: %v", err)
	}
	r, err := m.Regroup(3)
	if err != nil || r.Groups != 3 || r.Rows != 2 || r.Check() != nil {
		t.Fatalf("Regroup(3) = %+v, %v", r, err)
	}
	if _, err := m.Regroup(4); !errors.Is(err, tensor.ErrShape) {
		t.Fatalf("Regroup(4): %v, want ErrShape", err)
	}
}

// FuzzQuantizePerTokenFP4 feeds arbitrary shapes and values: the quantizer
// either refuses with a *FieldError or returns an operand that passes Check
// and dequantizes to values within one code step of the input (NaN blocks
// aside).
func FuzzQuantizePerTokenFP4(f *testing.F) {
	f.Add(uint8(2), uint8(64), uint8(0), false, []byte{1, 2, 3, 200, 255, 0})
	f.Add(uint8(1), uint8(131), uint8(1), true, []byte{0x7f, 0xc0, 0, 0})
	f.Add(uint8(0), uint8(0), uint8(2), false, []byte{})
	f.Fuzz(func(t *testing.T, rows, k, gsel uint8, ue bool, raw []byte) {
		gran := []int{32, 128, 64}[int(gsel)%3]
		x := make([]float32, int(rows)*int(k))
		for i := range x {
			if len(raw) > 0 {
				x[i] = float32(int8(raw[i%len(raw)])) / 8
			}
		}
		if len(raw) > 3 && len(x) > 0 {
			x[int(raw[3])%len(x)] = float32(math.NaN())
		}
		m, err := tensor.QuantizePerTokenFP4(x, int(rows), int(k), gran, tensor.QuantOptions{UE8M0: ue})
		if err != nil {
			var fe *tensor.FieldError
			if !errors.As(err, &fe) || (k%2 == 0 && gran != 64) {
				t.Fatalf("rows %d k %d gran %d: unexpected error %v", rows, k, gran, err)
			}
			return
		}
		if err := m.Check(); err != nil {
			t.Fatal(err)
		}
		d, err := tensor.DequantizeFP4(m)
		if err != nil {
			t.Fatal(err)
		}
		h := fp4Host(t, m)
		for i, v := range x {
			s := h.Scale(0, i/int(k), (i%int(k))/gran)
			if s != s {
				continue
			}
			if math.Abs(float64(d[i]-v)) > float64(s)*1.0000001 {
				t.Fatalf("x[%d]=%v → %v at scale %v", i, v, d[i], s)
			}
		}
	})
}

func TestStackFP4(t *testing.T) {
	x := testutil.Normal(testutil.RNG(9), 3*64, 0, 1)
	a, _ := tensor.QuantizePerTokenFP4(x[:64], 1, 64, 32, tensor.QuantOptions{UE8M0: true})
	b, _ := tensor.QuantizePerTokenFP4(x[64:128], 1, 64, 32, tensor.QuantOptions{UE8M0: true})
	c, _ := tensor.QuantizePerTokenFP4(x[128:], 1, 64, 32, tensor.QuantOptions{UE8M0: true})
	// A strided single-group operand stacks by rows.
	cs := *c
	cd := fp4Host(t, c).Data
	cs.Stride = 40
	cs.Data = tensor.Host[tensor.E2M1x2](append(append([]tensor.E2M1x2(nil), cd...), make([]tensor.E2M1x2, 8)...))
	s, err := tensor.StackFP4(a, b, &cs)
	if err != nil {
		t.Fatal(err)
	}
	if s.Groups != 3 || s.Check() != nil {
		t.Fatalf("stacked %+v: %v", s, s.Check())
	}
	got, _ := tensor.DequantizeFP4(s)
	var want []float32
	for _, m := range []*tensor.FP4Matrix{a, b, c} {
		d, _ := tensor.DequantizeFP4(m)
		want = append(want, d...)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("element %d: %v, want %v", i, got[i], want[i])
		}
	}
	f32, _ := tensor.QuantizePerTokenFP4(x[:64], 1, 64, 32, tensor.QuantOptions{})
	for _, bad := range [][]*tensor.FP4Matrix{nil, {a, nil}, {a, f32}, {s}} {
		if _, err := tensor.StackFP4(bad...); !errors.Is(err, tensor.ErrShape) {
			t.Errorf("StackFP4(%d operands): %v, want ErrShape", len(bad), err)
		}
	}
}
