package mla

import (
	"context"
	"math"
	"runtime"
	"sync"

	"github.com/fireflyer-go/fireflyer/internal/par"
)

// pieceKernel is what a Go backend supplies to the shared split-KV driver:
// the attention of the rows of one KV head over one piece of one request.
type pieceKernel interface {
	// newScratch returns per-goroutine scratch for problem p; release hands
	// it back when the goroutine is done (for reuse by later calls).
	newScratch(p *Problem) any
	release(scratch any)
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
			acc := getFloats(total * rowStride * (dv + 1))
			defer putFloats(acc)
			oAcc, lAcc = acc[:total*rowStride*dv], acc[total*rowStride*dv:]
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

	err := parallelFor(ctx, len(pieces)*hkv, func() (func(int), func()) {
		scr := k.newScratch(p)
		buf := getFloats(rows * (dv + 1))
		o, l := buf[:rows*dv], buf[rows*dv:]
		done := func() {
			k.release(scr)
			putFloats(buf)
		}
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
		}, done
	})
	if err != nil || oAcc == nil {
		return err
	}
	return parallelFor(ctx, p.B*hkv, func() (func(int), func()) {
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
		}, func() {}
	})
}

// parallelFor runs task(i) for i in [0, n) on up to GOMAXPROCS
// participants of the shared worker pool (internal/par), each with its own
// task closure from newWorker, whose done function runs when that
// participant finishes. It stops handing out work once ctx is done and then
// returns ctx.Err().
func parallelFor(ctx context.Context, n int, newWorker func() (task func(int), done func())) error {
	return par.For(ctx, n, runtime.GOMAXPROCS(0), newWorker)
}

// floatPool recycles the float32 buffers of decode calls (per-goroutine
// outputs, split accumulators, cpu-backend scratch), so that a model calling
// Decode once per layer per token does not churn the garbage collector.
var floatPool sync.Pool

// getFloats returns a slice of n float32 (contents undefined).
func getFloats(n int) []float32 {
	if v, ok := floatPool.Get().(*[]float32); ok && cap(*v) >= n {
		return (*v)[:n]
	} else if ok {
		floatPool.Put(v)
	}
	return make([]float32, n)
}

// getFloatParts returns one pooled buffer from getFloats holding the sizes
// in turn, and its consecutive parts of those lengths (each capped at its own
// length); hand all back with putFloats.
func getFloatParts(sizes []int) (all []float32, part [][]float32) {
	total := 0
	for _, n := range sizes {
		total += n
	}
	all = getFloats(total)
	buf := all
	part = make([][]float32, len(sizes))
	for i, n := range sizes {
		part[i], buf = buf[:n:n], buf[n:]
	}
	return all, part
}

// putFloats hands a slice from getFloats back.
func putFloats(s []float32) {
	s = s[:cap(s)]
	floatPool.Put(&s)
}
