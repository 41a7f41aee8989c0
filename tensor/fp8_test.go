package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// e4m3Bits builds the float32 of an E4M3 code from bit fields, independently
// of the decode table.
func e4m3Bits(c uint8) float32 {
	s := float32(1)
	if c&0x80 != 0 {
		s = -1
	}
	e, m := int(c>>3&0xF), int(c&7)
	if e == 0 {
		return s * float32(m) / 512
	}
	return s * math.Float32frombits(uint32(e-7+127)<<23|uint32(m)<<20)
}

func e5m2Bits(c uint8) float32 {
	s := float32(1)
	if c&0x80 != 0 {
		s = -1
	}
	e, m := int(c>>2&0x1F), int(c&3)
	if e == 0 {
		return s * float32(m) / 65536
	}
	return s * math.Float32frombits(uint32(e-15+127)<<23|uint32(m)<<21)
}

func TestE4M3AllCodes(t *testing.T) {
	for c := 0; c < 256; c++ {
		e := E4M3(c)
		got := e.Float32()
		if c&0x7F == 0x7F {
			if !e.IsNaN() || got == got {
				t.Fatalf("code %#02x: want NaN, got %v", c, got)
			}
			if r := E4M3FromFloat32(got); !r.IsNaN() {
				t.Errorf("code %#02x: NaN re-encodes to %#02x", c, r)
			}
			if r := E4M3FromFloat32Torch(got); !r.IsNaN() {
				t.Errorf("code %#02x: torch NaN re-encodes to %#02x", c, r)
			}
			continue
		}
		if e.IsNaN() {
			t.Fatalf("code %#02x reported NaN", c)
		}
		if want := e4m3Bits(uint8(c)); got != want || math.Signbit(float64(got)) != (c&0x80 != 0) {
			t.Fatalf("code %#02x decodes to %v, want %v", c, got, want)
		}
		if r := E4M3FromFloat32(got); r != e {
			t.Errorf("code %#02x (%v) re-encodes to %#02x", c, got, r)
		}
		if r := E4M3FromFloat32Torch(got); r != e {
			t.Errorf("code %#02x (%v) torch re-encodes to %#02x", c, got, r)
		}
	}
}

func TestE5M2AllCodes(t *testing.T) {
	for c := 0; c < 256; c++ {
		e := E5M2(c)
		got := e.Float32()
		switch {
		case c&0x7F > 0x7C:
			if !e.IsNaN() || got == got {
				t.Fatalf("code %#02x: want NaN, got %v", c, got)
			}
			if !E5M2FromFloat32(got).IsNaN() || !E5M2FromFloat32Torch(got).IsNaN() {
				t.Errorf("code %#02x: NaN does not re-encode to NaN", c)
			}
			continue
		case c&0x7F == 0x7C:
			if !math.IsInf(float64(got), 1-2*(c>>7)) {
				t.Fatalf("code %#02x: want Inf, got %v", c, got)
			}
		default:
			if want := e5m2Bits(uint8(c)); got != want || math.Signbit(float64(got)) != (c&0x80 != 0) {
				t.Fatalf("code %#02x decodes to %v, want %v", c, got, want)
			}
		}
		if r := E5M2FromFloat32(got); r != e {
			t.Errorf("code %#02x (%v) re-encodes to %#02x", c, got, r)
		}
		if r := E5M2FromFloat32Torch(got); r != e {
			t.Errorf("code %#02x (%v) torch re-encodes to %#02x", c, got, r)
		}
	}
}

func TestE4M3Boundaries(t *testing.T) {
	sub := float32(math.Ldexp(1, -9))
	cases := []struct {
		in         float32
		sat, torch E4M3
	}{
		{448, 0x7E, 0x7E},
		{-448, 0xFE, 0xFE},
		{456, 0x7E, 0x7E},   // between 448 and the NaN slot: nearest is 448
		{464, 0x7E, 0x7E},   // tie 448|480: to even (448)
		{465, 0x7E, 0x7F},   // torch rounds up into the NaN code
		{479.9, 0x7E, 0x7F}, // still below torch's 480 cut-off
		{480, 0x7E, 0x7F},
		{-480, 0xFE, 0xFF},
		{1e30, 0x7E, 0x7F},
		{float32(math.Inf(1)), 0x7E, 0x7F},
		{float32(math.Inf(-1)), 0xFE, 0xFF},
		{sub, 0x01, 0x01},                          // smallest subnormal 2^-9
		{sub / 2, 0x00, 0x00},                      // tie 0|2^-9: to even (0)
		{sub * 0.50001, 0x01, 0x01},                // just above the tie
		{sub * 1.5, 0x02, 0x02},                    // tie 1|2 (×2^-9): to even (2)
		{sub * 2.5, 0x02, 0x02},                    // tie 2|3: to even (2)
		{sub * 3.5, 0x04, 0x04},                    // tie 3|4: to even (4)
		{-sub / 4, 0x80, 0x80},                     // rounds to -0
		{1.0625, 0x38, 0x38},                       // tie 1|1.125: to even (1)
		{1.1875, 0x3A, 0x3A},                       // tie 1.125|1.25: to even (1.25)
		{float32(math.Ldexp(1, -6)), 0x08, 0x08},   // smallest normal
		{float32(math.Ldexp(15, -10)), 0x08, 0x08}, // 7.5·2^-9 ties 7|8: to even (8 = 2^-6)
	}
	for _, c := range cases {
		if got := E4M3FromFloat32(c.in); got != c.sat {
			t.Errorf("E4M3FromFloat32(%v) = %#02x, want %#02x", c.in, got, c.sat)
		}
		if got := E4M3FromFloat32Torch(c.in); got != c.torch {
			t.Errorf("E4M3FromFloat32Torch(%v) = %#02x, want %#02x", c.in, got, c.torch)
		}
	}
	if !E4M3FromFloat32(float32(math.NaN())).IsNaN() {
		t.Error("NaN does not encode to NaN")
	}
}

func TestE5M2Boundaries(t *testing.T) {
	cases := []struct {
		in         float32
		sat, torch E5M2
	}{
		{57344, 0x7B, 0x7B},
		{61439, 0x7B, 0x7B},
		{61440, 0x7B, 0x7C}, // tie 57344|65536(Inf): to even, which is Inf
		{65536, 0x7B, 0x7C},
		{float32(math.Inf(1)), 0x7C, 0x7C},
		{float32(math.Inf(-1)), 0xFC, 0xFC},
		{float32(math.Ldexp(1, -16)), 0x01, 0x01},
		{float32(math.Ldexp(1, -17)), 0x00, 0x00}, // tie: to even
		{float32(math.Ldexp(3, -17)), 0x02, 0x02}, // tie 1|2: to even
		{1.125, 0x3C, 0x3C},                       // tie 1|1.25: to even
	}
	for _, c := range cases {
		if got := E5M2FromFloat32(c.in); got != c.sat {
			t.Errorf("E5M2FromFloat32(%v) = %#02x, want %#02x", c.in, got, c.sat)
		}
		if got := E5M2FromFloat32Torch(c.in); got != c.torch {
			t.Errorf("E5M2FromFloat32Torch(%v) = %#02x, want %#02x", c.in, got, c.torch)
		}
	}
}

// nearestCode is the float64 oracle: the finite code nearest to x, ties to
// the even code (mantissa LSB 0), saturating at the largest finite code.
func nearestCode(x float64, decode func(uint8) float32, finite func(uint8) bool) uint8 {
	best, bestD := -1, math.Inf(1)
	for c := 0; c < 256; c++ {
		if !finite(uint8(c)) || (c&0x80 != 0) != math.Signbit(x) {
			continue
		}
		d := math.Abs(float64(decode(uint8(c))) - x)
		if d < bestD || d == bestD && c&1 == 0 {
			best, bestD = c, d
		}
	}
	return uint8(best)
}

func TestFP8AgainstOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 200000
	if testing.Short() {
		n = 20000
	}
	e4Finite := func(c uint8) bool { return c&0x7F != 0x7F }
	e5Finite := func(c uint8) bool { return c&0x7F < 0x7C }
	e4 := func(c uint8) float32 { return E4M3(c).Float32() }
	e5 := func(c uint8) float32 { return E5M2(c).Float32() }
	for i := 0; i < n; i++ {
		// log-uniform magnitudes across both formats' ranges, both signs
		x := float32(math.Ldexp(1+r.Float64(), r.IntN(40)-24))
		if r.IntN(2) == 0 {
			x = -x
		}
		if got, want := E4M3FromFloat32(x), nearestCode(float64(x), e4, e4Finite); uint8(got) != want && !(got == 0x80 && want == 0) && !(got == 0 && want == 0x80) {
			t.Fatalf("E4M3FromFloat32(%v) = %#02x, oracle %#02x", x, got, want)
		}
		if got, want := E5M2FromFloat32(x), nearestCode(float64(x), e5, e5Finite); uint8(got) != want && !(got == 0x80 && want == 0) && !(got == 0 && want == 0x80) {
			t.Fatalf("E5M2FromFloat32(%v) = %#02x, oracle %#02x", x, got, want)
		}
	}
}
