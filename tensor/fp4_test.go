package tensor

import (
	"math"
	"testing"
)

// e2m1Bits builds the float64 of an E2M1 code from its bit fields,
// independently of the decode table.
func e2m1Bits(c uint8) float64 {
	s := 1.0
	if c&8 != 0 {
		s = -1
	}
	e, m := int(c>>1&3), float64(c&1)
	if e == 0 {
		return s * m * 0.5
	}
	return s * (1 + m/2) * math.Ldexp(1, e-1)
}

func TestE2M1AllCodes(t *testing.T) {
	want := []float32{0, 0.5, 1, 1.5, 2, 3, 4, 6}
	for c := 0; c < 16; c++ {
		e := E2M1(c)
		got := e.Float32()
		if float64(got) != e2m1Bits(uint8(c)) || got != want[c&7]*float32(1-2*(c>>3)) {
			t.Fatalf("code %#x decodes to %v, want %v", c, got, e2m1Bits(uint8(c)))
		}
		if math.Signbit(float64(got)) != (c&8 != 0) {
			t.Fatalf("code %#x: sign of %v", c, got)
		}
		if r := E2M1FromFloat32(got); r != e {
			t.Errorf("code %#x (%v) re-encodes to %#x", c, got, r)
		}
	}
}

func TestE2M1Boundaries(t *testing.T) {
	next := func(f float32, dir float64) float32 { return float32(math.Nextafter32(f, float32(dir))) }
	cases := []struct {
		in   float32
		want E2M1
	}{
		{0.25, 0x0}, {next(0.25, 1), 0x1}, // tie 0|0.5: to even (0)
		{0.75, 0x2}, {next(0.75, 0), 0x1}, // tie 0.5|1: to even (1)
		{1.25, 0x2}, {next(1.25, 2), 0x3}, // tie 1|1.5: to even (1)
		{1.75, 0x4}, {next(1.75, 0), 0x3}, // tie 1.5|2: to even (2)
		{2.5, 0x4}, {next(2.5, 3), 0x5}, // tie 2|3: to even (2)
		{3.5, 0x6}, {next(3.5, 0), 0x5}, // tie 3|4: to even (4)
		{5, 0x6}, {next(5, 6), 0x7}, // tie 4|6: to even (4)
		{6, 0x7}, {7, 0x7}, {1e30, 0x7}, {float32(math.Inf(1)), 0x7}, // saturation
		{-6, 0xF}, {-1e30, 0xF}, {float32(math.Inf(-1)), 0xF},
		{-0.75, 0xA}, {-5, 0xE}, {-2.6, 0xD},
		{0, 0x0}, {float32(math.Copysign(0, -1)), 0x8}, {-0.1, 0x8}, {1e-40, 0x0}, // zeros and subnormal float32
		{float32(math.NaN()), 0x7},
	}
	for _, c := range cases {
		if got := E2M1FromFloat32(c.in); got != c.want {
			t.Errorf("E2M1FromFloat32(%v) = %#x, want %#x", c.in, got, c.want)
		}
	}
}

// TestE2M1AllBF16 converts every BF16 value (all 65536 bit patterns, so
// every exponent and both signs) and checks the result against a float64
// oracle: the nearest code, ties to the even code (mantissa bit 0),
// saturating at ±6 (magnitudes clamp to 6 first), the sign kept on zero.
func TestE2M1AllBF16(t *testing.T) {
	for b := 0; b < 1<<16; b++ {
		x := BF16(b).Float32()
		if x != x {
			continue
		}
		best, bestD := 0, math.Inf(1)
		for c := 0; c < 8; c++ {
			d := math.Abs(e2m1Bits(uint8(c)) - min(math.Abs(float64(x)), E2M1Max))
			if d < bestD || d == bestD && c&1 == 0 {
				best, bestD = c, d
			}
		}
		if math.Signbit(float64(x)) {
			best |= 8
		}
		if got := E2M1FromFloat32(x); got != E2M1(best) {
			t.Fatalf("E2M1FromFloat32(%v) (bf16 %#04x) = %#x, oracle %#x", x, b, got, best)
		}
	}
}

func TestE2M1x2Packing(t *testing.T) {
	for b := 0; b < 256; b++ {
		p := E2M1x2(b)
		lo, hi := p.Float32s()
		if lo != E2M1(b&0xF).Float32() || hi != E2M1(b>>4).Float32() {
			t.Fatalf("byte %#02x unpacks to (%v, %v)", b, lo, hi)
		}
		if PackE2M1(p.Lo(), p.Hi()) != p {
			t.Fatalf("byte %#02x does not round-trip", b)
		}
	}
	// Upstream's order: element 0 in the low nibble. 1.0 is code 2, −6 is 0xF.
	if got := PackE2M1(E2M1FromFloat32(1), E2M1FromFloat32(-6)); got != 0xF2 {
		t.Fatalf("PackE2M1(1, -6) = %#02x, want 0xF2", got)
	}
	if got := PackE2M1(0x12, 0x34); got != 0x42 {
		t.Fatalf("PackE2M1 keeps high nibbles: %#02x", got)
	}
	dst := make([]float32, 6)
	DecodeE2M1x2(dst, []E2M1x2{0xF2, 0x71, 0x08}, 0.25)
	want := []float32{0.25, -1.5, 0.125, 1.5, 0, 0}
	for i := range want {
		if dst[i] != want[i] || math.Signbit(float64(dst[i])) != (i == 1 || i == 4) {
			t.Fatalf("DecodeE2M1x2 = %v, want %v (−0 at 4)", dst, want)
		}
	}
}
