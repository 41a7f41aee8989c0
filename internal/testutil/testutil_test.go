package testutil

import (
	"math"
	"testing"
)

func TestCalcDiff(t *testing.T) {
	cases := []struct {
		name       string
		x, y       []float64
		want, wShf float64
	}{
		{"equal", []float64{1, 2, 3}, []float64{1, 2, 3}, 0, 0},
		{"zeros", []float64{0, 0}, []float64{0, 0}, 0, 0},
		{"opposite", []float64{1}, []float64{-1}, 2, 1 - 0.0/4},
		{"half", []float64{1, 0}, []float64{0, 1}, 1, 1 - 2.0*4/(5+5)},
		{"scaled", []float64{2}, []float64{1}, 1 - 4.0/5, 1 - 2.0*6/(9+4)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := CalcDiff(c.x, c.y); math.Abs(got-c.want) > 1e-15 {
				t.Errorf("CalcDiff = %v, want %v", got, c.want)
			}
			if got := CalcDiffShifted(c.x, c.y); math.Abs(got-c.wShf) > 1e-15 {
				t.Errorf("CalcDiffShifted = %v, want %v", got, c.wShf)
			}
		})
	}
}

func TestGenerators(t *testing.T) {
	a := Normal(RNG(1), 10000, 0, 1)
	b := Normal(RNG(1), 10000, 0, 1)
	var s, s2 float64
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("same seed gave different samples")
		}
		s += float64(a[i])
		s2 += float64(a[i]) * float64(a[i])
	}
	mean, v := s/1e4, s2/1e4-(s/1e4)*(s/1e4)
	if math.Abs(mean) > 0.05 || math.Abs(v-1) > 0.05 {
		t.Errorf("mean %v var %v", mean, v)
	}
	u := Uniform(RNG(2), 1000, -2, 3)
	for _, x := range u {
		if x < -2 || x >= 3 {
			t.Fatalf("uniform sample %v out of range", x)
		}
	}
	if d := MaxAbsDiff([]float64{1, 2}, []float64{1.5, 1}); d != 1 {
		t.Errorf("MaxAbsDiff = %v", d)
	}
}

func TestLong(t *testing.T) {
	for _, c := range []struct {
		v    string
		want bool
	}{{"", false}, {"0", false}, {"false", false}, {"yes", false}, {"1", true}, {"true", true}, {"T", true}} {
		t.Setenv(EnvLong, c.v)
		if got := Long(); got != c.want {
			t.Errorf("%s=%q: Long() = %v, want %v", EnvLong, c.v, got, c.want)
		}
	}
}

// TestRandomTopK checks that every row holds k distinct experts below e and
// that the draw is deterministic for a seed.
func TestRandomTopK(t *testing.T) {
	const n, k, e = 50, 8, 20
	a := RandomTopK(RNG(3), n, k, e)
	b := RandomTopK(RNG(3), n, k, e)
	if len(a) != n*k {
		t.Fatalf("len %d, want %d", len(a), n*k)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("entry %d: %d then %d for one seed", i, a[i], b[i])
		}
	}
	for r := 0; r < n; r++ {
		seen := map[int32]bool{}
		for _, x := range a[r*k : (r+1)*k] {
			if x < 0 || x >= e || seen[x] {
				t.Fatalf("row %d: %v", r, a[r*k:(r+1)*k])
			}
			seen[x] = true
		}
	}
}
