package dsv3

import (
	"math"
	"testing"
)

func smallConfig() Config {
	c := Published()
	c.NRoutedExperts, c.NGroup, c.TopKGroup, c.NumExpertsPerTok = 8, 4, 2, 3
	return c
}

func TestRouteHandWorked(t *testing.T) {
	c := smallConfig()
	// groups of two: g0 {0,1}, g1 {2,3}, g2 {4,5}, g3 {6,7}
	scores := []float32{0.9, 0.1, 0.5, 0.5, 0.2, 0.2, 0.8, 0.3}
	bias := []float32{0, 0, 0, 0, 0, 0.9, 0, 0}
	// biased: 0.9 0.1 | 0.5 0.5 | 0.2 1.1 | 0.8 0.3 → group sums 1.0, 1.0, 1.3, 1.1
	// kept groups: g2 (1.3), g3 (1.1); top-3 biased among {4,5,6,7}: 5 (1.1), 6 (0.8), 7 (0.3)
	idx := make([]int32, 3)
	w := make([]float32, 3)
	if err := Route(c, scores, bias, idx, w); err != nil {
		t.Fatal(err)
	}
	if idx[0] != 5 || idx[1] != 6 || idx[2] != 7 {
		t.Fatalf("topk %v, want [5 6 7]", idx)
	}
	// weights use unbiased scores 0.2, 0.8, 0.3 (sum 1.3) × 2.5
	for i, s := range []float64{0.2, 0.8, 0.3} {
		if want := s / 1.3 * 2.5; math.Abs(float64(w[i])-want) > 1e-6 {
			t.Errorf("weight %d = %v, want %v", i, w[i], want)
		}
	}
	w64 := RouteWeights64(c, []float64{0.9, 0.1, 0.5, 0.5, 0.2, 0.2, 0.8, 0.3}, idx)
	for i := range w64 {
		if math.Abs(w64[i]-float64(w[i])) > 1e-6 {
			t.Errorf("RouteWeights64[%d] = %v vs %v", i, w64[i], w[i])
		}
	}
}

func TestRouteTiesLowerIndex(t *testing.T) {
	c := smallConfig()
	scores := make([]float32, 8)
	for i := range scores {
		scores[i] = 0.5
	}
	idx := make([]int32, 3)
	w := make([]float32, 3)
	if err := Route(c, scores, make([]float32, 8), idx, w); err != nil {
		t.Fatal(err)
	}
	if idx[0] != 0 || idx[1] != 1 || idx[2] != 2 {
		t.Fatalf("ties: %v, want [0 1 2]", idx)
	}
	if err := Route(c, scores[:7], make([]float32, 8), idx, w); err == nil {
		t.Fatal("short scores accepted")
	}
}
