package mla

import (
	"math"
	"testing"
)

// TestRotateHalves: channel i pairs with i+n/2 (GPT-NeoX layout), each pair
// rotating by pos·invFreq[i]; it equals RotatePairs on the interleaved
// permutation of x; channels past 2·len(invFreq) are left alone.
func TestRotateHalves(t *testing.T) {
	inv := RoPEFrequencies(8, 10000)
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}
	y := append([]float64(nil), x...)
	RotateHalves(y, inv, 3)
	for i, f := range inv {
		s, c := math.Sincos(3 * f)
		if math.Abs(y[i]-(x[i]*c-x[i+4]*s)) > 1e-15 || math.Abs(y[i+4]-(x[i]*s+x[i+4]*c)) > 1e-15 {
			t.Fatalf("pair (%d, %d): %v %v", i, i+4, y[i], y[i+4])
		}
	}
	if y[8] != 9 {
		t.Fatal("channel past the rotated ones changed")
	}
	il := make([]float64, 8)
	for i := 0; i < 4; i++ {
		il[2*i], il[2*i+1] = x[i], x[i+4]
	}
	RotatePairs(il, inv, 3)
	for i := 0; i < 4; i++ {
		if math.Abs(il[2*i]-y[i]) > 1e-15 || math.Abs(il[2*i+1]-y[i+4]) > 1e-15 {
			t.Fatalf("differs from RotatePairs on the interleaved permutation at %d", i)
		}
	}
	short := []float64{1, 2}
	RotateHalves(short, inv, 3)
	if short[0] != 1 || short[1] != 2 {
		t.Fatal("too-short x was changed")
	}
}
