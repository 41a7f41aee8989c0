package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/fireflyer-go/fireflyer/pipeline"
	"github.com/fireflyer-go/fireflyer/pipeline/svg"
)

// timeline is the last step of a traced run, measured and predicted, in µs.
type timeline struct {
	s                   *pipeline.Schedule
	measured, predicted *pipeline.Report
	costs               pipeline.OpCosts
}

func median(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// timelines turns the ranks' recorded calls into a measured Report (µs
// from the first call of any rank) and simulates the schedule with the
// median F, b and W durations.
func timelines(rep *report) (*timeline, error) {
	s := rep.Sched
	durs := map[pipeline.Kind][]int64{}
	spans := make([][]pipeline.Span, s.Ranks)
	for _, r := range rep.Results {
		if r.Rank < 0 || r.Rank >= s.Ranks {
			return nil, fmt.Errorf("result of rank %d", r.Rank)
		}
		for _, c := range r.Calls {
			durs[c.Kind] = append(durs[c.Kind], (c.End-c.Start+500)/1000)
		}
		sp, err := pipeline.OpSpans(s.Ops[r.Rank], r.Calls)
		if err != nil {
			return nil, fmt.Errorf("rank %d: %w", r.Rank, err)
		}
		spans[r.Rank] = sp
	}
	m, err := pipeline.Measured(s, spans, 1000)
	if err != nil {
		return nil, err
	}
	f, b, w := median(durs[pipeline.Forward]), median(durs[pipeline.BackwardInput]), median(durs[pipeline.BackwardWeight])
	costs := pipeline.OpCosts{F: f, B: b + w, W: w, FB: f + b + w}
	pred, err := pipeline.Simulate(s, pipeline.SimOptions{Costs: costs})
	if err != nil {
		return nil, err
	}
	return &timeline{s: s, measured: m, predicted: pred, costs: costs}, nil
}

func (t *timeline) writeSVG(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	title := fmt.Sprintf("%s ranks=%d chunks=%d: measured %.2f ms (run) vs simulated %.2f ms (sim) from F=%.3f B=%.3f W=%.3f ms",
		t.s.Method, t.s.Ranks, t.s.Chunks, ms(t.measured.Makespan), ms(t.predicted.Makespan), ms(t.costs.F), ms(t.costs.B), ms(t.costs.W))
	err = svg.Write(f, t.s, svg.Options{Report: t.measured, Compare: t.predicted, Title: title})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
