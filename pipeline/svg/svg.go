package svg

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"strconv"

	"github.com/fireflyer-go/fireflyer/pipeline"
)

// Options configure Write.
type Options struct {
	// Report, when set, places ops at their simulated times (x = time);
	// otherwise each op takes one slot (x = op index on its rank).
	Report *pipeline.Report
	// Title is drawn above the rows; empty means "<method> ranks=N chunks=C".
	Title string
	// Compare, when set with Report, is a second timing of the same
	// schedule (say the simulator's prediction next to a measured run, both
	// in one time unit): every rank gets two rows on one time axis, Report's
	// above Compare's, named by Labels (default "run" and "sim").
	Compare *pipeline.Report
	// Labels name the rows of Report and Compare.
	Labels [2]string
}

// Colours after the upstream DualPipe README figures: forward orange,
// backward green, input-only backward light green, weight gradient blue; the
// second phase (DualPipe's reverse direction, DualPipeV's mirrored stage)
// uses a darker shade of the same colour.
var svgFill = map[pipeline.Kind][2]string{
	pipeline.Forward:        {"#fcd29f", "#f5a65b"},
	pipeline.Backward:       {"#9bd89b", "#5cb85c"},
	pipeline.BackwardInput:  {"#d4f0cf", "#b2e2a8"},
	pipeline.BackwardWeight: {"#9ecbf5", "#5c9fe0"},
}

func fill(a pipeline.Action) string {
	c := svgFill[a.Kind]
	return c[min(a.Phase, 1)]
}

// Write draws s as a standalone SVG: one row per rank, time (or slot
// index) across, F/B/b/W cells coloured by kind and shaded by phase, each
// labelled with its micro-batch, overlapped F&B pairs as one cell split into
// a forward top half and a backward bottom half, and idle time hatched. The
// output depends only on its inputs (deterministic). opt.Report must come
// from pipeline.Simulate(s, ...), else an error wrapping pipeline.ErrParam is returned.
func Write(w io.Writer, s *pipeline.Schedule, opt Options) error {
	if err := s.Validate(); err != nil {
		return err
	}
	rep := opt.Report
	reps := []*pipeline.Report{rep}
	if opt.Compare != nil {
		if rep == nil {
			return fmt.Errorf("%w: Options.Compare without Options.Report", pipeline.ErrParam)
		}
		reps = append(reps, opt.Compare)
	}
	for _, rp := range reps {
		if rp == nil {
			continue
		}
		if len(rp.Spans) != s.Ranks {
			return fmt.Errorf("%w: report has %d ranks, schedule %d", pipeline.ErrParam, len(rp.Spans), s.Ranks)
		}
		for r := range rp.Spans {
			if len(rp.Spans[r]) != len(s.Ops[r]) {
				return fmt.Errorf("%w: report rank %d has %d spans for %d ops", pipeline.ErrParam, r, len(rp.Spans[r]), len(s.Ops[r]))
			}
		}
	}
	labels := opt.Labels
	if labels[0] == "" {
		labels[0] = "run"
	}
	if labels[1] == "" {
		labels[1] = "sim"
	}
	left := 44.0
	if len(reps) > 1 {
		left = 70
	}
	const (
		top    = 34.0
		rowH   = 26.0
		rowGap = 4.0
	)
	slots := 0
	for _, ops := range s.Ops {
		slots = max(slots, len(ops))
	}
	var span float64 // length of the x axis in time units or slots
	if rep != nil {
		span = float64(rep.Makespan)
		if opt.Compare != nil {
			span = max(span, float64(opt.Compare.Makespan))
		}
	} else {
		span = float64(slots)
	}
	plotW := min(max(880.0, 22.0*float64(slots)), 3200.0)
	if span == 0 {
		span = 1
	}
	scale := plotW / span
	rows := s.Ranks * len(reps)
	extra := 0.0 // a gap between ranks when each has two rows
	if len(reps) > 1 {
		extra = float64(s.Ranks) * rowGap
	}
	height := top + float64(rows)*(rowH+rowGap) + extra + 48
	width := left + plotW + 16

	bw := bufio.NewWriter(w)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }
	title := opt.Title
	if title == "" {
		title = fmt.Sprintf("%s ranks=%d chunks=%d", s.Method, s.Ranks, s.Chunks)
		if rep != nil {
			title += fmt.Sprintf(" makespan=%d bubble=%.2f%%", rep.Makespan, 100*rep.BubbleRatio)
		}
	}
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="sans-serif">`+"\n", f(width), f(height), f(width), f(height))
	p(`<defs><pattern id="idle" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff"/><line x1="0" y1="0" x2="0" y2="6" stroke="#c8c8c8" stroke-width="2"/></pattern></defs>` + "\n")
	p(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	p(`<text x="%s" y="20" font-size="14">%s</text>`+"\n", f(left), html.EscapeString(title))
	for row := range rows {
		r, k := row/len(reps), row%len(reps)
		ops, rep := s.Ops[r], reps[k]
		y := top + float64(row)*(rowH+rowGap)
		if len(reps) > 1 {
			y += float64(r) * rowGap
			p(`<text x="6" y="%s" font-size="11">r%d %s</text>`+"\n", f(y+rowH/2+4), r, html.EscapeString(labels[k]))
		} else {
			p(`<text x="6" y="%s" font-size="12">r%d</text>`+"\n", f(y+rowH/2+4), r)
		}
		p(`<rect x="%s" y="%s" width="%s" height="%s" fill="url(#idle)" stroke="#999999" stroke-width="0.5"/>`+"\n", f(left), f(y), f(plotW), f(rowH))
		for i, o := range ops {
			var x0, x1 float64
			if rep != nil {
				x0, x1 = float64(rep.Spans[r][i].Start)*scale, float64(rep.Spans[r][i].End)*scale
			} else {
				x0, x1 = float64(i)*scale, float64(i+1)*scale
			}
			x0 += left
			x1 += left
			cw := x1 - x0
			if cw <= 0 {
				continue
			}
			fs := min(11.0, rowH/2-1)
			label := func(a pipeline.Action, cy, size float64) {
				txt := strconv.Itoa(a.Micro)
				if float64(len(txt))*size*0.62 > cw-1 {
					return
				}
				p(`<text x="%s" y="%s" font-size="%s" text-anchor="middle">%s</text>`+"\n", f((x0+x1)/2), f(cy+size*0.36), f(size), txt)
			}
			p(`<g><title>%s</title>`, html.EscapeString(o.String()))
			if o.Overlapped() {
				p(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>`, f(x0), f(y), f(cw), f(rowH/2), fill(o.Action))
				p(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>`, f(x0), f(y+rowH/2), f(cw), f(rowH/2), fill(o.With))
				p(`<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333333" stroke-width="0.5"/>`, f(x0), f(y+rowH/2), f(x1), f(y+rowH/2))
				p(`<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#333333" stroke-width="1"/>`+"\n", f(x0), f(y), f(cw), f(rowH))
				label(o.Action, y+rowH/4, fs*0.85)
				label(o.With, y+3*rowH/4, fs*0.85)
			} else {
				p(`<rect x="%s" y="%s" width="%s" height="%s" fill="%s" stroke="#333333" stroke-width="1"/>`+"\n", f(x0), f(y), f(cw), f(rowH), fill(o.Action))
				label(o.Action, y+rowH/2, fs)
			}
			p("</g>\n")
		}
	}
	// Legend.
	ly := top + float64(rows)*(rowH+rowGap) + extra + 14
	lx := left
	legend := []struct {
		name string
		a    pipeline.Action
	}{
		{"F forward", pipeline.Action{Kind: pipeline.Forward}},
		{"B backward", pipeline.Action{Kind: pipeline.Backward}},
		{"b input backward", pipeline.Action{Kind: pipeline.BackwardInput}},
		{"W weight backward", pipeline.Action{Kind: pipeline.BackwardWeight}},
	}
	for _, l := range legend {
		p(`<rect x="%s" y="%s" width="14" height="14" fill="%s" stroke="#333333"/>`, f(lx), f(ly), fill(l.a))
		l.a.Phase = 1
		p(`<rect x="%s" y="%s" width="14" height="14" fill="%s" stroke="#333333"/>`, f(lx+15), f(ly), fill(l.a))
		p(`<text x="%s" y="%s" font-size="12">%s</text>`+"\n", f(lx+34), f(ly+11), l.name)
		lx += 168
	}
	p(`<rect x="%s" y="%s" width="14" height="7" fill="%s"/><rect x="%s" y="%s" width="14" height="7" fill="%s"/><rect x="%s" y="%s" width="14" height="14" fill="none" stroke="#333333"/>`,
		f(lx), f(ly), fill(pipeline.Action{Kind: pipeline.Forward}), f(lx), f(ly+7), fill(pipeline.Action{Kind: pipeline.Backward}), f(lx), f(ly))
	p(`<text x="%s" y="%s" font-size="12">F&amp;B overlapped</text>`+"\n", f(lx+19), f(ly+11))
	lx += 140
	p(`<rect x="%s" y="%s" width="14" height="14" fill="url(#idle)" stroke="#999999"/><text x="%s" y="%s" font-size="12">idle</text>`+"\n", f(lx), f(ly), f(lx+19), f(ly+11))
	axis := "slot →"
	if rep != nil {
		axis = "time →"
	}
	p(`<text x="%s" y="20" font-size="12" text-anchor="end">%s</text>`+"\n", f(left+plotW), axis)
	p("</svg>\n")
	return bw.Flush()
}
