package testutil

import (
	"math"
	"testing"
)

// TestMLPStage runs the stage on one row with h = f = 1, where every value
// has a closed form: a = w1·x, y = w2·GELU(a), da = w2·dy·GELU'(a),
// dx = w1·da, and the weight gradients dy·g and da·x.
func TestMLPStage(t *testing.T) {
	x, w1, w2, dy := []float64{1}, []float64{0.5}, []float64{2}, []float64{3}
	a, g, y := make([]float64, 1), make([]float64, 1), make([]float64, 1)
	MLPForward(1, 1, 1, x, w1, w2, a, g, y)
	const gelu05 = 0.34571400982514394 // GELU (tanh form) at 0.5
	if a[0] != 0.5 || math.Abs(g[0]-gelu05) > 1e-15 || math.Abs(y[0]-2*gelu05) > 1e-15 {
		t.Fatalf("a %v g %v y %v", a, g, y)
	}
	da, dx := make([]float64, 1), make([]float64, 1)
	MLPBackwardInput(1, 1, 1, dy, w1, w2, a, da, dx)
	if want := 6 * GELUGrad(0.5); da[0] != want || dx[0] != 0.5*want {
		t.Fatalf("da %v dx %v, want %v and %v", da, dx, want, 0.5*want)
	}
	g1, g2 := []float64{1}, []float64{1} // gradients accumulate
	MLPBackwardWeight(1, 1, 1, x, g, dy, da, g1, g2)
	if g2[0] != 1+3*g[0] || g1[0] != 1+da[0] {
		t.Fatalf("g1 %v g2 %v", g1, g2)
	}
}
