package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm/oracle"
)

// TestStep: forward, data gradient and weight gradient of the FP8 layer
// match float64 within DeepGEMM's 1e-3 gate on both backends, with an
// empty expert and sizes that are not multiples of 128.
func TestStep(t *testing.T) {
	for _, be := range []string{"cpu", "ref"} {
		c := Config{Backend: be, Experts: 3, Hidden: 200, Inter: 136, Tokens: 150, Seed: 7}
		if be == "cpu" {
			c = Config{Backend: be, Experts: 4, Hidden: 384, Inter: 200, Tokens: 160, Seed: 1}
		}
		r, err := Step(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %+v", be, r)
		for name, d := range map[string]float64{"forward": r.Forward, "dgrad": r.DGrad, "wgrad": r.WGrad} {
			// Quantization error alone is ~7e-4 (upstream's typical value);
			// a wrong layout or scale is ~1.
			if !(d < oracle.GateUnquantized) || d < 1e-5 {
				t.Errorf("%s %s: calc_diff %.3g, want in [1e-5, 1e-3)", be, name, d)
			}
		}
	}
}

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, Config{Backend: "cpu", Experts: 2, Hidden: 256, Inter: 128, Tokens: 100, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"forward", "dgrad", "wgrad", "k-grouped FP8 TN"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(&out, Config{Backend: "nope", Experts: 1, Hidden: 1, Inter: 1}); err == nil {
		t.Error("unknown backend accepted")
	}
	if _, err := Step(context.Background(), Config{Backend: "cpu"}); err == nil {
		t.Error("zero config accepted")
	}
}
