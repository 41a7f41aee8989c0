package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randFloats(n int) []float32 {
	r := rand.New(rand.NewPCG(3, 4))
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64() * 100)
	}
	out[0], out[1], out[2] = float32(math.NaN()), float32(math.Inf(1)), 1e-9
	return out
}

func TestSliceConversionsMatchScalar(t *testing.T) {
	src := randFloats(4099)
	e4 := make([]E4M3, len(src))
	e5 := make([]E5M2, len(src))
	bf := make([]BF16, len(src))
	hf := make([]F16, len(src))
	if n := EncodeE4M3(e4, src); n != len(src) {
		t.Fatalf("EncodeE4M3 wrote %d", n)
	}
	EncodeE5M2(e5, src)
	EncodeBF16(bf, src)
	EncodeF16(hf, src)
	scaled := make([]E4M3, len(src))
	EncodeE4M3Scaled(scaled, src, 0.25)
	for i, f := range src {
		if e4[i] != E4M3FromFloat32(f) || e5[i] != E5M2FromFloat32(f) || bf[i] != BF16FromFloat32(f) || hf[i] != F16FromFloat32(f) {
			t.Fatalf("element %d (%v): slice and scalar encodings differ", i, f)
		}
		if scaled[i] != E4M3FromFloat32(f*0.25) {
			t.Fatalf("element %d: scaled encoding differs", i)
		}
	}
	out := make([]float32, len(src))
	check := func(name string, n int, want func(i int) float32) {
		t.Helper()
		if n != len(src) {
			t.Fatalf("%s wrote %d", name, n)
		}
		for i := range out {
			w := want(i)
			if math.Float32bits(out[i]) != math.Float32bits(w) && !(w != w && out[i] != out[i]) {
				t.Fatalf("%s element %d: %v, want %v", name, i, out[i], w)
			}
		}
	}
	check("DecodeE4M3", DecodeE4M3(out, e4), func(i int) float32 { return e4[i].Float32() })
	check("DecodeE5M2", DecodeE5M2(out, e5), func(i int) float32 { return e5[i].Float32() })
	check("DecodeBF16", DecodeBF16(out, bf), func(i int) float32 { return bf[i].Float32() })
	check("DecodeF16", DecodeF16(out, hf), func(i int) float32 { return hf[i].Float32() })
	if n := DecodeE4M3(out[:3], e4); n != 3 {
		t.Errorf("short dst: wrote %d, want 3", n)
	}
}

const benchN = 1 << 16

// benchDecode times dec over benchN elements encoded by enc; size is the
// bytes of one element.
func benchDecode[T any](b *testing.B, size int, enc func([]T, []float32) int, dec func([]float32, []T) int) {
	src := make([]T, benchN)
	enc(src, randFloats(benchN))
	dst := make([]float32, benchN)
	b.SetBytes(int64(benchN * size))
	for b.Loop() {
		dec(dst, src)
	}
}

// benchEncode times enc over benchN float32 values.
func benchEncode[T any](b *testing.B, enc func([]T, []float32) int) {
	src := randFloats(benchN)
	dst := make([]T, benchN)
	b.SetBytes(benchN * 4)
	for b.Loop() {
		enc(dst, src)
	}
}

func BenchmarkDecodeE4M3(b *testing.B) { benchDecode(b, 1, EncodeE4M3, DecodeE4M3) }
func BenchmarkEncodeE4M3(b *testing.B) { benchEncode(b, EncodeE4M3) }
func BenchmarkDecodeBF16(b *testing.B) { benchDecode(b, 2, EncodeBF16, DecodeBF16) }
func BenchmarkEncodeBF16(b *testing.B) { benchEncode(b, EncodeBF16) }
func BenchmarkDecodeF16(b *testing.B)  { benchDecode(b, 2, EncodeF16, DecodeF16) }
func BenchmarkEncodeF16(b *testing.B)  { benchEncode(b, EncodeF16) }

// BenchmarkCopyF32 is the anchor: a plain copy of the same float32 data.
func BenchmarkCopyF32(b *testing.B) {
	src := randFloats(benchN)
	dst := make([]float32, benchN)
	b.SetBytes(benchN * 4)
	for b.Loop() {
		copy(dst, src)
	}
}
