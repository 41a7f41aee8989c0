package main

import (
	"fmt"
	"math"
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

// calls of an op: F is one Forward, B a BackwardInput and a BackwardWeight,
// b and W one call each, an F&B pair a forward and a full backward.
func callsOf(o pipeline.Op) int {
	n := 0
	for _, a := range o.Actions() {
		if a.Kind == pipeline.Backward {
			n += 2
		} else {
			n++
		}
	}
	return n
}

func median(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// timelines turns the ranks' recorded calls into a measured Report (times
// from the first call of any rank) and simulates the schedule with the
// median F, b and W durations.
func timelines(rep *report) (*timeline, error) {
	s := rep.Sched
	t0 := int64(math.MaxInt64)
	for _, r := range rep.Results {
		for _, c := range r.Calls {
			t0 = min(t0, c.Start)
		}
	}
	var durs [3][]int64
	m := &pipeline.Report{Spans: make([][]pipeline.Span, s.Ranks), Busy: make([]int64, s.Ranks), Idle: make([]int64, s.Ranks)}
	for _, r := range rep.Results {
		if r.Rank < 0 || r.Rank >= s.Ranks {
			return nil, fmt.Errorf("result of rank %d", r.Rank)
		}
		calls := r.Calls
		for _, c := range calls {
			durs[c.Kind] = append(durs[c.Kind], (c.End-c.Start+500)/1000)
		}
		for _, o := range s.Ops[r.Rank] {
			n := callsOf(o)
			if len(calls) < n {
				return nil, fmt.Errorf("rank %d recorded too few stage calls for its ops", r.Rank)
			}
			sp := pipeline.Span{Op: o, Start: (calls[0].Start - t0) / 1000, End: (calls[n-1].End - t0) / 1000}
			m.Spans[r.Rank] = append(m.Spans[r.Rank], sp)
			m.Busy[r.Rank] += sp.End - sp.Start
			m.Makespan = max(m.Makespan, sp.End)
			calls = calls[n:]
		}
		if len(calls) != 0 {
			return nil, fmt.Errorf("rank %d recorded %d stage calls more than its ops make", r.Rank, len(calls))
		}
	}
	var idle int64
	for r := range m.Idle {
		m.Idle[r] = m.Makespan - m.Busy[r]
		idle += m.Idle[r]
	}
	if m.Makespan > 0 {
		m.BubbleRatio = float64(idle) / float64(int64(s.Ranks)*m.Makespan)
	}
	f, b, w := median(durs[kindF]), median(durs[kindB]), median(durs[kindW])
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
