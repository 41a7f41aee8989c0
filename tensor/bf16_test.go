package tensor

import (
	"math"
	"testing"
)

func TestBF16AllCodes(t *testing.T) {
	for c := 0; c < 1<<16; c++ {
		b := BF16(c)
		got := b.Float32()
		want := math.Float32frombits(uint32(c) << 16)
		isNaN := c&0x7FFF > 0x7F80
		if b.IsNaN() != isNaN {
			t.Fatalf("code %#04x: IsNaN = %v", c, b.IsNaN())
		}
		if isNaN {
			if got == got {
				t.Fatalf("code %#04x: want NaN, got %v", c, got)
			}
			if !BF16FromFloat32(got).IsNaN() || !BF16FromFloat32Torch(got).IsNaN() {
				t.Fatalf("code %#04x: NaN does not re-encode to NaN", c)
			}
			continue
		}
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("code %#04x decodes to %v, want %v", c, got, want)
		}
		if r := BF16FromFloat32(got); r != b {
			t.Fatalf("code %#04x re-encodes to %#04x", c, r)
		}
		if r := BF16FromFloat32Torch(got); r != b {
			t.Fatalf("code %#04x torch re-encodes to %#04x", c, r)
		}
	}
}

func TestBF16Rounding(t *testing.T) {
	f := func(bits uint32) float32 { return math.Float32frombits(bits) }
	cases := []struct {
		in         float32
		sat, torch BF16
	}{
		{f(0x3F808000), 0x3F80, 0x3F80},   // 1+2^-8: tie, to even (1)
		{f(0x3F818000), 0x3F82, 0x3F82},   // 1+3·2^-8: tie, to even (up)
		{f(0x3F808001), 0x3F81, 0x3F81},   // just above the tie
		{f(0x00008000), 0x0000, 0x0000},   // subnormal tie to even (0)
		{f(0x00018000), 0x0002, 0x0002},   // subnormal tie to even (up)
		{math.MaxFloat32, 0x7F7F, 0x7F80}, // rounds past the largest bfloat16
		{-math.MaxFloat32, 0xFF7F, 0xFF80},
		{float32(math.Inf(1)), 0x7F80, 0x7F80},
		{float32(math.Inf(-1)), 0xFF80, 0xFF80},
	}
	for _, c := range cases {
		if got := BF16FromFloat32(c.in); got != c.sat {
			t.Errorf("BF16FromFloat32(%v) = %#04x, want %#04x", c.in, got, c.sat)
		}
		if got := BF16FromFloat32Torch(c.in); got != c.torch {
			t.Errorf("BF16FromFloat32Torch(%v) = %#04x, want %#04x", c.in, got, c.torch)
		}
	}
	if got := BF16FromFloat32Torch(float32(math.NaN())); got != BF16NaNBits {
		t.Errorf("torch NaN = %#04x, want 0x7FC0", got)
	}
}

func TestF16AllCodes(t *testing.T) {
	for c := 0; c < 1<<16; c++ {
		h := F16(c)
		got := h.Float32()
		isNaN := c&0x7FFF > 0x7C00
		if h.IsNaN() != isNaN {
			t.Fatalf("code %#04x: IsNaN = %v", c, h.IsNaN())
		}
		if isNaN {
			if got == got || !F16FromFloat32(got).IsNaN() || !F16FromFloat32Torch(got).IsNaN() {
				t.Fatalf("code %#04x: NaN round trip failed", c)
			}
			continue
		}
		// independent decode from the bit fields
		s := 1.0
		if c&0x8000 != 0 {
			s = -1
		}
		e, m := c>>10&0x1F, float64(c&0x3FF)
		var want float64
		switch {
		case e == 0:
			want = s * m * math.Ldexp(1, -24)
		case e == 31:
			want = math.Inf(int(s))
		default:
			want = s * (1 + m/1024) * math.Ldexp(1, e-15)
		}
		if float64(got) != want || math.Signbit(float64(got)) != (s < 0) {
			t.Fatalf("code %#04x decodes to %v, want %v", c, got, want)
		}
		if r := F16FromFloat32(got); r != h {
			t.Fatalf("code %#04x re-encodes to %#04x", c, r)
		}
		if r := F16FromFloat32Torch(got); r != h {
			t.Fatalf("code %#04x torch re-encodes to %#04x", c, r)
		}
	}
}

func TestF16Rounding(t *testing.T) {
	cases := []struct {
		in         float32
		sat, torch F16
	}{
		{65504, 0x7BFF, 0x7BFF},
		{65519, 0x7BFF, 0x7BFF},                       // below the tie with 65536
		{65520, 0x7BFF, 0x7C00},                       // tie 65504|Inf: to even (Inf), saturated
		{1e6, 0x7BFF, 0x7C00},                         //
		{float32(math.Ldexp(1, -25)), 0x0000, 0x0000}, // tie 0|2^-24: to even
		{float32(math.Ldexp(3, -25)), 0x0002, 0x0002}, // tie 1|2: to even
		{1 + 1.0/2048, 0x3C00, 0x3C00},                // tie 1|1+2^-10: to even
	}
	for _, c := range cases {
		if got := F16FromFloat32(c.in); got != c.sat {
			t.Errorf("F16FromFloat32(%v) = %#04x, want %#04x", c.in, got, c.sat)
		}
		if got := F16FromFloat32Torch(c.in); got != c.torch {
			t.Errorf("F16FromFloat32Torch(%v) = %#04x, want %#04x", c.in, got, c.torch)
		}
	}
}

func TestUE8M0AllCodes(t *testing.T) {
	for c := 0; c < 256; c++ {
		u := UE8M0(c)
		got := u.Float32()
		if c == 0xFF {
			if got == got || UE8M0Ceil(got) != 0xFF || UE8M0Nearest(got) != 0xFF {
				t.Fatal("0xFF must decode to NaN and NaN encode to 0xFF")
			}
			continue
		}
		if want := math.Ldexp(1, c-127); float64(got) != want {
			t.Fatalf("code %#02x decodes to %v, want %v", c, got, want)
		}
		if u.Exp() != c-127 {
			t.Fatalf("code %#02x: Exp = %d", c, u.Exp())
		}
		if r := UE8M0Ceil(got); r != u {
			t.Fatalf("UE8M0Ceil(%v) = %#02x, want %#02x", got, r, c)
		}
		if r := UE8M0Nearest(got); r != u {
			t.Fatalf("UE8M0Nearest(%v) = %#02x, want %#02x", got, r, c)
		}
	}
}

func TestUE8M0Rounding(t *testing.T) {
	cases := []struct {
		in            float32
		ceil, nearest UE8M0
	}{
		{1, 127, 127},
		{1.0000001, 128, 127},
		{1.49, 128, 127},
		{1.5, 128, 128}, // the linear tie goes up
		{-3, 129, 129},  // magnitude is used
		{0.75, 127, 127},
		{0.7, 127, 126},
		{0, 0, 0},
		{float32(math.Ldexp(1, 127)) * 1.5, 0xFE, 0xFE},
		{float32(math.Inf(1)), 0xFE, 0xFE},
		{float32(math.Ldexp(1, -130)), 0, 0},
		{float32(math.Ldexp(1.2, -127)), 1, 0},
		{448.0 / 448, 127, 127},
	}
	for _, c := range cases {
		if got := UE8M0Ceil(c.in); got != c.ceil {
			t.Errorf("UE8M0Ceil(%v) = %d, want %d", c.in, got, c.ceil)
		}
		if got := UE8M0Nearest(c.in); got != c.nearest {
			t.Errorf("UE8M0Nearest(%v) = %d, want %d", c.in, got, c.nearest)
		}
	}
}
