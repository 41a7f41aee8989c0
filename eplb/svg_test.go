package eplb

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestWriteSVG(t *testing.T) {
	plan, err := Rebalance(readmeWeight, readmeConfig)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Evaluate(readmeWeight, plan, readmeConfig)
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := WriteSVG(&a, m); err != nil {
		t.Fatal(err)
	}
	if err := WriteSVG(&b, m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("not deterministic")
	}
	s := a.String()
	if !strings.HasPrefix(s, "<svg ") || !strings.HasSuffix(s, "</svg>\n") {
		t.Error("not a standalone SVG document")
	}
	// After bars in layer 0 carry the plan's loads, before bars the baseline.
	for _, want := range []string{"layer 0 GPU 1: 86.50", "layer 0 GPU 0: 222.00", "layer 1 GPU 7: 117.50"} {
		if !strings.Contains(s, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	for _, bad := range []*Metrics{nil, {}, {GPULoad: [][]float64{{1, 2}}, BaselineGPULoad: [][]float64{{1}}}} {
		if err := WriteSVG(&a, bad); !errors.Is(err, ErrPlan) {
			t.Errorf("WriteSVG(%+v) = %v, want ErrPlan", bad, err)
		}
	}
}
