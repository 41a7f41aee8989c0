package svg

import (
	"bufio"
	"fmt"
	"io"
	"strconv"

	"github.com/fireflyer-go/fireflyer/eplb"
)

// Write draws m as a standalone SVG: one row per layer with two bar
// charts of per-GPU load, "before" (BaselineGPULoad: no replication, experts
// in order) in grey and "after" (GPULoad) in blue, on a common scale per
// layer, with the mean load as a dashed line and each side's max/mean in the
// row label. The output depends only on m (deterministic). Errors: eplb.ErrPlan
// for metrics with no layers or mismatched shapes, or the writer's error.
func Write(w io.Writer, m *eplb.Metrics) error {
	if m == nil || len(m.GPULoad) == 0 || len(m.BaselineGPULoad) != len(m.GPULoad) || len(m.GPULoad[0]) == 0 {
		return fmt.Errorf("%w: metrics have no layers", eplb.ErrPlan)
	}
	R := len(m.GPULoad[0])
	for l := range m.GPULoad {
		if len(m.GPULoad[l]) != R || len(m.BaselineGPULoad[l]) != R {
			return fmt.Errorf("%w: metrics layer %d does not have %d GPUs", eplb.ErrPlan, l, R)
		}
	}
	const (
		margin = 10
		labelW = 190
		barH   = 48
		rowH   = barH + 22
		gap    = 24
		titleH = 56
	)
	barW := max(2, min(16, 480/R))
	panelW := barW * R
	width := max(margin+labelW+2*panelW+gap+2*margin, 620)
	height := titleH + rowH*len(m.GPULoad) + margin
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }

	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(bw, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	x0 := margin + labelW
	x1 := x0 + panelW + gap
	fmt.Fprintf(bw, `<text x="%d" y="16" font-size="13">Per-GPU load by layer (dashed line: mean)</text>`+"\n", margin)
	fmt.Fprintf(bw, `<text x="%d" y="31">before: no replication, experts in order (grey); after: the plan (blue)</text>`+"\n", margin)
	fmt.Fprintf(bw, `<text x="%d" y="46">before</text>`+"\n", x0)
	fmt.Fprintf(bw, `<text x="%d" y="46">after</text>`+"\n", x1)
	for l := range m.GPULoad {
		before, after := m.BaselineGPULoad[l], m.GPULoad[l]
		scale := 0.0
		var sum float64
		for g := range R {
			scale = max(scale, before[g], after[g])
			sum += after[g]
		}
		mean := sum / float64(R)
		top := titleH + l*rowH
		base := top + barH
		_, bImb := eplb.Balance(before)
		_, aImb := eplb.Balance(after)
		fmt.Fprintf(bw, `<text x="%d" y="%d">layer %d: max/mean %s → %s</text>`+"\n", margin, top+barH/2+4, l, strconv.FormatFloat(bImb, 'f', 3, 64), strconv.FormatFloat(aImb, 'f', 3, 64))
		for side, loads := range [2][]float64{before, after} {
			x, fill := x0, "#9e9e9e"
			if side == 1 {
				x, fill = x1, "#1f77b4"
			}
			fmt.Fprintf(bw, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x, base, x+panelW, base)
			for g, v := range loads {
				h := 0.0
				if scale > 0 {
					h = v / scale * barH
				}
				fmt.Fprintf(bw, `<rect x="%d" y="%s" width="%d" height="%s" fill="%s"><title>layer %d GPU %d: %s</title></rect>`+"\n",
					x+g*barW, f(float64(base)-h), max(1, barW-1), f(h), fill, l, g, f(v))
			}
			if scale > 0 {
				y := float64(base) - mean/scale*barH
				fmt.Fprintf(bw, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#d62728" stroke-dasharray="3,2"/>`+"\n", x, f(y), x+panelW, f(y))
			}
		}
	}
	fmt.Fprintln(bw, "</svg>")
	return bw.Flush()
}
