package svg_test

import (
	"bytes"
	"fmt"
	"log"
	"strings"

	"github.com/fireflyer-go/fireflyer/eplb"
	"github.com/fireflyer-go/fireflyer/eplb/svg"
)

// Draw the per-GPU load before and after a plan.
func ExampleWrite() {
	w := [][]float32{{90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86}}
	cfg := eplb.Config{Replicas: 16, Groups: 4, Nodes: 2, GPUs: 8}
	plan, err := eplb.Rebalance(w, cfg)
	if err != nil {
		log.Fatal(err)
	}
	m, err := eplb.Evaluate(w, plan, cfg)
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	if err := svg.Write(&buf, m); err != nil {
		log.Fatal(err)
	}
	out := buf.String()
	fmt.Println(strings.HasPrefix(out, "<svg"), strings.HasSuffix(strings.TrimSpace(out), "</svg>"))
	// Output: true true
}
