package svg

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/eplb"
)

// The example of the upstream EPLB README: 2 layers × 12 experts on 16
// slots, 4 groups, 2 nodes, 8 GPUs.
var (
	readmeWeight = [][]float32{
		{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86},
		{20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27},
	}
	readmeConfig = eplb.Config{Replicas: 16, Groups: 4, Nodes: 2, GPUs: 8}
)

func TestWrite(t *testing.T) {
	plan, err := eplb.Rebalance(readmeWeight, readmeConfig)
	if err != nil {
		t.Fatal(err)
	}
	m, err := eplb.Evaluate(readmeWeight, plan, readmeConfig)
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := Write(&a, m); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, m); err != nil {
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
	for _, bad := range []*eplb.Metrics{nil, {}, {GPULoad: [][]float64{{1, 2}}, BaselineGPULoad: [][]float64{{1}}}} {
		if err := Write(&a, bad); !errors.Is(err, eplb.ErrPlan) {
			t.Errorf("Write(%+v) = %v, want ErrPlan", bad, err)
		}
	}
}
