package oracle

import (
	"context"
	"runtime"

	"github.com/fireflyer-go/fireflyer/internal/anchor"
	"github.com/fireflyer-go/fireflyer/mla"
)

// validEntries counts the entries of idx [rows][width] that a backend reads:
// the first lens[row/per] of each row that valid accepts.
func validEntries(idx []int32, rows, width, per int, lens []int32, valid func(int32) bool) int {
	n := 0
	for r := range rows {
		l := width
		if lens != nil {
			l = int(lens[r/per])
		}
		for _, t := range idx[r*width:][:l] {
			if valid(t) {
				n++
			}
		}
	}
	return n
}

// measure times run against an equal-FLOP anchor.GEMM(m, n, k) and an
// anchor.Memcpy of bytes, alternating as Measure does.
func measure(run func() error, flops, bytes float64, m, n, k, reps, rounds int) (t, tg, tm float64, err error) {
	var runErr error
	f := func() {
		if err := run(); err != nil && runErr == nil {
			runErr = err
		}
	}
	gemm, mem := anchor.GEMM(m, max(n, 1), k), anchor.Memcpy(max(int(bytes), 1))
	best := anchor.Alternate(rounds, reps, f, gemm, mem)
	t, tg, tm = best[0], best[1], best[2]
	return t, tg, tm, runErr
}

func measurement(name, backend, ks string, t, tg, tm, flops, bytes float64, reps, rounds int) Measurement {
	return Measurement{
		Case: name, Backend: backend, Seconds: t,
		GFLOPs: flops / t / 1e9, GBs: bytes / t / 1e9,
		GEMMGFLOPs: flops / tg / 1e9, MemcpyGBs: bytes / tm / 1e9,
		RatioGEMM: tg / t, RatioMemcpy: tm / t,
		GOMAXPROCS: runtime.GOMAXPROCS(0), Kernels: ks,
		Repetitions: max(reps, 1), AnchorRounds: max(rounds, 1),
	}
}

// MeasureSparseDecode times be's SparseDecode on the case against the
// same-run anchors: a GEMM of equal FLOPs (2·b·s_q·h_q·(576+512) per valid
// index) and a memcpy of the gathered records' bytes (656 per valid index),
// alternating rounds as Measure does. GB/s counts those bytes.
func MeasureSparseDecode(be mla.SparseBackend, c SparseDecodeCase, reps, rounds int) (Measurement, error) {
	in, err := c.Build()
	if err != nil {
		return Measurement{}, err
	}
	valid := func(t int32) bool { return t != -1 }
	keys := validEntries(in.Indices, c.B*c.SQ, in.TopK, c.SQ, in.Opts.TopkLength, valid)
	if in.Opts.ExtraCache != nil {
		keys += validEntries(in.Opts.ExtraIndices, c.B*c.SQ, in.Opts.ExtraTopK, c.SQ, in.Opts.ExtraTopkLength, valid)
	}
	flops := 2 * float64(c.HQ) * float64(keys) * (mla.HeadDim + mla.HeadDimV)
	bytes := float64(keys) * mla.FP8BytesPerToken
	run := func() error {
		_, _, err := mla.SparseDecode(context.Background(), be, in.Q, in.Cache, in.Indices, in.TopK, &in.Opts)
		return err
	}
	t, tg, tm, err := measure(run, flops, bytes, c.B*c.SQ*c.HQ, keys/max(c.B*c.SQ, 1), mla.HeadDim+mla.HeadDimV, reps, rounds)
	if err != nil {
		return Measurement{}, err
	}
	return measurement("sparse_decode_"+in.Case.Name(), be.Name(), sparseKernels(be), t, tg, tm, flops, bytes, reps, rounds), nil
}

// MeasureSparsePrefill times be's SparsePrefill on the case against an
// equal-FLOP GEMM (2·h_q·(d_qk+d_v) per valid index) and a memcpy of the
// gathered float32 KV rows' bytes (4·d_qk per valid index).
func MeasureSparsePrefill(be mla.SparseBackend, c SparsePrefillCase, reps, rounds int) (Measurement, error) {
	in, err := c.Build()
	if err != nil {
		return Measurement{}, err
	}
	c = in.Case
	keys := validEntries(in.In.Indices, c.SQ, c.TopK, 1, in.Opts.TopkLength, func(t int32) bool { return t >= 0 && int(t) < c.SKV })
	dv := min(mla.HeadDimV, c.DQK)
	flops := 2 * float64(c.HQ) * float64(keys) * float64(c.DQK+dv)
	bytes := float64(keys) * 4 * float64(c.DQK)
	run := func() error {
		_, _, _, err := mla.SparsePrefill(context.Background(), be, in.In, &in.Opts)
		return err
	}
	t, tg, tm, err := measure(run, flops, bytes, c.SQ*c.HQ, keys/c.SQ, c.DQK+dv, reps, rounds)
	if err != nil {
		return Measurement{}, err
	}
	return measurement("sparse_prefill_"+c.Name(), be.Name(), sparseKernels(be), t, tg, tm, flops, bytes, reps, rounds), nil
}

// sparseKernels names be's kernel set (the cpu sparse backend's Kernels
// method), or "go" for a backend that names none.
func sparseKernels(be mla.SparseBackend) string {
	if k, ok := be.(interface{ Kernels() string }); ok {
		return k.Kernels()
	}
	return "go"
}
