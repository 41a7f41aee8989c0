package eplb

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// isSentinel reports whether err wraps one of the package's sentinels.
func isSentinel(err error) bool {
	for _, s := range []error{ErrShape, ErrLoad, ErrConfig, ErrInfeasible, ErrPlan, ErrSyntax} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// fuzzWeights decodes raw into layers of float32 loads. Even modes read small
// integers (frequent ties), odd modes raw float32 bits (NaN, Inf, negative);
// ragged cuts the last layer short.
func fuzzWeights(raw []byte, layers uint8, mode uint8, ragged bool) [][]float32 {
	L := int(layers%4) + 1
	var vals []float32
	if mode%2 == 0 {
		for _, b := range raw {
			vals = append(vals, float32(b%16))
		}
	} else {
		for len(raw) >= 4 {
			vals = append(vals, math.Float32frombits(binary.LittleEndian.Uint32(raw)))
			raw = raw[4:]
		}
	}
	E := len(vals) / L
	w := make([][]float32, L)
	for l := range w {
		w[l] = vals[l*E : (l+1)*E]
	}
	if ragged && E > 0 {
		w[L-1] = w[L-1][:E-1]
	}
	return w
}

func FuzzRebalance(f *testing.F) {
	readme := make([]byte, 0, 24)
	for _, row := range readmeWeight {
		for _, x := range row {
			readme = append(readme, byte(x))
		}
	}
	f.Add(readme, uint8(1), uint8(0), false, uint8(16), uint8(4), uint8(2), uint8(8), uint8(0), false)
	f.Add(readme, uint8(1), uint8(0), false, uint8(16), uint8(4), uint8(2), uint8(8), uint8(2), true)
	f.Add(readme, uint8(0), uint8(0), true, uint8(12), uint8(3), uint8(2), uint8(4), uint8(0), false)
	f.Add([]byte{0, 0, 0xc0, 0x7f, 0, 0, 0x80, 0xbf}, uint8(0), uint8(1), false, uint8(2), uint8(1), uint8(1), uint8(1), uint8(1), false)
	f.Add([]byte{}, uint8(0), uint8(0), false, uint8(1), uint8(1), uint8(1), uint8(1), uint8(0), false)
	f.Fuzz(func(t *testing.T, raw []byte, layers, mode uint8, ragged bool, p, g, n, r, pol uint8, noDup bool) {
		w := fuzzWeights(raw, layers, mode, ragged)
		cfg := Config{Replicas: int(p), Groups: int(g), Nodes: int(n), GPUs: int(r), Policy: Policy(pol % 4), NoDuplicates: noDup}
		plan, err := Rebalance(w, cfg)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		if err := ValidatePlan(plan); err != nil {
			t.Fatalf("invalid plan for %+v: %v", cfg, err)
		}
		m, err := Evaluate(w, plan, cfg)
		if err != nil {
			t.Fatalf("Evaluate: %v", err)
		}
		if noDup && m.Duplicates != 0 {
			t.Fatalf("%d duplicates with NoDuplicates", m.Duplicates)
		}
		cfg.Previous = plan
		again, err := Rebalance(w, cfg)
		if err != nil {
			t.Fatalf("re-plan against itself: %v", err)
		}
		if n := SlotsChanged(again, plan); n != 0 {
			t.Fatalf("re-plan against itself moved %d slots", n)
		}
	})
}
