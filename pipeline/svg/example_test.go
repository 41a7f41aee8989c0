package svg_test

import (
	"bytes"
	"fmt"
	"log"
	"strings"

	"github.com/fireflyer-go/fireflyer/pipeline"
	"github.com/fireflyer-go/fireflyer/pipeline/svg"
)

// Draw a DualPipe schedule at its simulated times.
func ExampleWrite() {
	s, err := pipeline.Generate(pipeline.MethodDualPipe, 4, 8)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := pipeline.Simulate(s, pipeline.SimOptions{Costs: pipeline.OpCosts{F: 1, B: 2, W: 1, FB: 3}})
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	if err := svg.Write(&buf, s, svg.Options{Report: rep}); err != nil {
		log.Fatal(err)
	}
	out := buf.String()
	fmt.Println(strings.HasPrefix(out, "<svg"), strings.Count(out, ">F0.0<") > 0, "makespan", rep.Makespan)
	// Output: true true makespan 26
}
