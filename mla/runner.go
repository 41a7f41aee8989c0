package mla

import (
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// pieceKernel is what a Go backend supplies to the shared split-KV driver:
// the attention of the rows of one KV head over one piece of one request.
type pieceKernel interface {
	// newScratch returns per-goroutine scratch for problem p.
	newScratch(p *Problem) any
	// run computes, for KV head kvh of request req over tokens [begin, end)
	// (masked per row by p.Visible), o [Rows][HeadDimV] normalised within
	// the piece and lse [Rows] in natural log, −Inf with o = 0 for a row that
	// sees none of the piece's keys.
	run(scratch any, p *Problem, req, kvh, begin, end int, o, lse []float32)
}

// runSchedule is the split-KV driver shared by the Go backends: it runs
// every (piece, KV head) of schedule s on up to GOMAXPROCS goroutines, writes
// single-split requests straight to out/lse and merges the others with
// Combine in split order. Every output element is written by exactly one
// task in a fixed order, so the bits depend only on s and the kernel.
func runSchedule(ctx context.Context, p *Problem, s *Schedule, out, lse []float32, k pieceKernel) error {
	pieces := s.Pieces()
	hkv, rows, dv, hpk := p.HKV(), p.Rows(), p.HeadDimV, p.HeadsPerKV()
	total := s.TotalSplits()
	rowStride := hkv * rows
	multi := func(req int) bool { return s.NumSplits[req+1]-s.NumSplits[req] > 1 }
	var oAcc, lAcc []float32
	for r := 0; r < p.B; r++ {
		if multi(r) {
			oAcc = make([]float32, total*rowStride*dv)
			lAcc = make([]float32, total*rowStride)
			break
		}
	}
	// scatter writes a finished row (request req, KV head kvh, row m).
	scatter := func(req, kvh, m int, o []float32, l float32) {
		j, h := m/hpk, kvh*hpk+m%hpk
		dst := out[((req*p.SQ+j)*p.HQ+h)*dv:][:dv]
		if math.IsInf(float64(l), -1) || l != l {
			clear(dst)
			l = float32(math.Inf(1))
		} else {
			copy(dst, o)
		}
		lse[(req*p.HQ+h)*p.SQ+j] = l
	}

	err := parallelFor(ctx, len(pieces)*hkv, func() func(int) {
		scr := k.newScratch(p)
		o := make([]float32, rows*dv)
		l := make([]float32, rows)
		return func(item int) {
			pc, kvh := pieces[item/hkv], item%hkv
			k.run(scr, p, pc.Req, kvh, pc.Begin, pc.End, o, l)
			if !multi(pc.Req) {
				for m := range rows {
					scatter(pc.Req, kvh, m, o[m*dv:(m+1)*dv], l[m])
				}
				return
			}
			base := pc.Slot*rowStride + kvh*rows
			copy(oAcc[base*dv:(base+rows)*dv], o)
			copy(lAcc[base:base+rows], l)
		}
	})
	if err != nil || oAcc == nil {
		return err
	}
	return parallelFor(ctx, p.B*hkv, func() func(int) {
		o := make([]float32, dv)
		var outs [][]float32
		var lses []float32
		return func(item int) {
			req, kvh := item/hkv, item%hkv
			if !multi(req) {
				return
			}
			for m := range rows {
				outs, lses = outs[:0], lses[:0]
				for slot := int(s.NumSplits[req]); slot < int(s.NumSplits[req+1]); slot++ {
					base := slot*rowStride + kvh*rows + m
					outs = append(outs, oAcc[base*dv:(base+1)*dv])
					lses = append(lses, lAcc[base])
				}
				l := combine(o, outs, lses)
				if math.IsInf(float64(l), 1) {
					l = float32(math.Inf(-1)) // scatter turns it back into +Inf with out = 0
				}
				scatter(req, kvh, m, o, l)
			}
		}
	})
}

// parallelFor runs task(i) for i in [0, n) on up to GOMAXPROCS goroutines,
// each with its own closure from newWorker. It stops handing out work once
// ctx is done and then returns ctx.Err().
func parallelFor(ctx context.Context, n int, newWorker func() func(int)) error {
	if n == 0 {
		return ctx.Err()
	}
	workers := min(runtime.GOMAXPROCS(0), n)
	var next atomic.Int64
	work := func() {
		task := newWorker()
		for ctx.Err() == nil {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			task(i)
		}
	}
	if workers == 1 {
		work()
		return ctx.Err()
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(work)
	}
	wg.Wait()
	return ctx.Err()
}
