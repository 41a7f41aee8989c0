package mla

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/kernels"
)

// TestDequantFast checks that the cpu backend's SIMD dequantizer gives the
// bits of dequantizeFP8Row for every code in every tile and several scales.
func TestDequantFast(t *testing.T) {
	rec := make([]byte, FP8BytesPerToken)
	for i := range FP8NoPEDim {
		rec[i] = byte(i*7 + i/128)
	}
	for g, s := range []uint32{0x3B800000, 0x3F800000, 0x3E99999A, 0x00000001} { // 2^-8, 1, 0.3, a subnormal
		rec[fp8ScaleOff+4*g], rec[fp8ScaleOff+4*g+1], rec[fp8ScaleOff+4*g+2], rec[fp8ScaleOff+4*g+3] = byte(s), byte(s>>8), byte(s>>16), byte(s>>24)
	}
	for i := range 2 * FP8RopeDim {
		rec[fp8RopeOff+i] = byte(i * 13)
	}
	want, got := make([]float32, HeadDim), make([]float32, HeadDim)
	dequantizeFP8Row(want, rec)
	for _, l := range []string{"", "avx2", "go"} {
		ks, err := kernels.ForName(l)
		if err != nil {
			continue
		}
		dequantFast(ks, got, rec)
		for i := range want {
			if want[i] != got[i] && !(want[i] != want[i] && got[i] != got[i]) {
				t.Fatalf("%v channel %d: %v, want %v", ks, i, got[i], want[i])
			}
		}
	}
}
