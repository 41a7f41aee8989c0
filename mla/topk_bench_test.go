package mla_test

import (
	"slices"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/anchor"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
)

// BenchmarkTopK2048Of64k selects the top 2048 of one 65536-logit row (the
// V3.2 decode step's index_topk over a 64k context) with TopKRow and
// reports x_sort, the time of slices.Sort on a copy of the same row divided
// by TopKRow's, both timed on one goroutine in alternating rounds of the
// same run.
func BenchmarkTopK2048Of64k(b *testing.B) {
	row := testutil.Normal(testutil.RNG(9), 65536, 0, 1)
	dst := make([]int32, 2048)
	for b.Loop() {
		mla.TopKRow(dst, row)
	}
	b.StopTimer()
	tmp := make([]float32, len(row))
	ts := anchor.Alternate(5, 3, func() { mla.TopKRow(dst, row) }, func() {
		copy(tmp, row)
		slices.Sort(tmp)
	})
	b.ReportMetric(ts[0]*1e6, "topk_µs")
	b.ReportMetric(ts[1]*1e6, "sort_µs")
	b.ReportMetric(ts[1]/ts[0], "x_sort")
}
