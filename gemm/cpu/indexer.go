package cpu

import (
	"context"
	"sync"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/internal/kernels"
	"github.com/fireflyer-go/fireflyer/internal/par"
)

// The indexer kernels (DeepGEMM fp8_mqa_logits, fp8_paged_mqa_logits). A
// work item is a group of query rows (all NextN rows of a request in the
// paged form; about 256/H consecutive rows in the prefill form) against a
// tile of idxTile keys: the tile's E4M3 rows are decoded and transposed
// once, the group's R = rows·H heads are multiplied with it as one
// [R, d]·[d, tile] GEMM on the kernels' register-blocked micro-kernel,
// and each row's logits are Σ_h w_h·max(0, s_h) (vector max and axpy over
// the tile) times the keys' scales. Items write disjoint logits, so the
// result does not depend on the number of workers.

// idxTile is the keys per work item: a multiple of 64 (the micro-kernel's
// column block) that keeps the transposed tile (d·idxTile float32, 128 KiB
// at d = 128) in L2.
const idxTile = 256

var _ gemm.IndexerBackend = (*Backend)(nil)

// idxScratch is one worker's buffers.
type idxScratch struct {
	q, kr, kt, s, acc, zero []float32
}

var idxPool = sync.Pool{New: func() any { return new(idxScratch) }}

func growF(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// idxGroup computes the item's logits: out[i][j] for the group's rows i
// (weights w [rows, H], q decoded into sc.q [rows·H, d]) and the tile's
// keys j < n (decoded rows in sc.kr [n, d], zero-padded to np), with key
// scales ksc. emit(i, acc) receives row i's Σ_h w_h·max(0, s_h) over the
// np tile columns (the first n valid) before the scales.
func idxGroup(ks kernels.Set, sc *idxScratch, rows, heads, d, n, np int, w []float32, emit func(i int, acc []float32)) {
	r := rows * heads
	sc.kt = growF(sc.kt, d*np)
	ks.Transpose(sc.kt, np, sc.kr, d, d, np)
	sc.s = growF(sc.s, r*np)
	ks.Gemm(r, np, d, sc.q, d, 1, sc.kt, np, sc.s, np, false)
	sc.acc = growF(sc.acc, np)
	if len(sc.zero) < np {
		sc.zero = make([]float32, np)
	}
	for i := 0; i < rows; i++ {
		clear(sc.acc)
		for h := 0; h < heads; h++ {
			row := sc.s[(i*heads+h)*np : (i*heads+h+1)*np]
			ks.MaxInto(row, sc.zero[:np])
			ks.Axpy(w[i*heads+h], row, sc.acc)
		}
		emit(i, sc.acc)
	}
}

// padRows zeroes decoded rows [n, np) of sc.kr so that padding keys
// contribute nothing (and no NaN).
func padRows(sc *idxScratch, n, np, d int) {
	clear(sc.kr[n*d : np*d])
}

// MQALogits implements gemm.IndexerBackend.
func (b *Backend) MQALogits(ctx context.Context, in *gemm.MQALogitsInput, logits []float32, clean bool) error {
	if b.err != nil {
		return b.err
	}
	h, d, nkv := in.Heads, in.HeadDim, in.SeqLenKV
	g := max(1, idxTile/h) // query rows per group
	type item struct{ row0, rows, j0, n int }
	var items []item
	for i0 := 0; i0 < in.SeqLen; i0 += g {
		rows := min(g, in.SeqLen-i0)
		lo, hi := nkv, 0
		for i := i0; i < i0+rows; i++ {
			if l, e := in.Range(i); l < e {
				lo, hi = min(lo, l), max(hi, e)
			}
		}
		for j0 := lo; j0 < hi; j0 += idxTile {
			items = append(items, item{i0, rows, j0, min(idxTile, hi-j0)})
		}
	}
	if clean {
		for i := 0; i < in.SeqLen; i++ {
			lo, hi := in.Range(i)
			row := logits[i*nkv : (i+1)*nkv]
			fillNegInf(row[:lo])
			fillNegInf(row[hi:])
		}
	}
	ks := b.ks
	return par.For(ctx, len(items), b.workers(), func() (func(int), func()) {
		sc := idxPool.Get().(*idxScratch)
		return func(k int) {
			it := items[k]
			np := roundUp(it.n, 64)
			sc.q = growF(sc.q, it.rows*h*d)
			ks.DecodeE4M3Rows(sc.q, d, in.Q[it.row0*h*d:], d, it.rows*h, d)
			sc.kr = growF(sc.kr, np*d)
			ks.DecodeE4M3Rows(sc.kr, d, in.K[it.j0*d:], d, it.n, d)
			padRows(sc, it.n, np, d)
			idxGroup(ks, sc, it.rows, h, d, it.n, np, in.Weights[it.row0*h:], func(i int, acc []float32) {
				r := it.row0 + i
				lo, hi := in.Range(r)
				lo, hi = max(lo, it.j0), min(hi, it.j0+it.n)
				out := logits[r*nkv : (r+1)*nkv]
				for j := lo; j < hi; j++ {
					out[j] = in.KScales[j] * acc[j-it.j0]
				}
			})
		}, func() { idxPool.Put(sc) }
	})
}

// PagedMQALogits implements gemm.IndexerBackend. It ignores
// in.ScheduleMeta.
func (b *Backend) PagedMQALogits(ctx context.Context, in *gemm.PagedMQALogitsInput, logits []float32, clean bool) error {
	if b.err != nil {
		return b.err
	}
	c := in.Cache
	h, d, w, bkv := in.Heads, c.HeadDim, in.MaxContextLen, c.BlockKV
	type item struct{ b, j0, n int }
	var items []item
	for bi := 0; bi < in.B; bi++ {
		vis := in.MaxVisible(bi)
		for j0 := 0; j0 < vis; j0 += idxTile {
			items = append(items, item{bi, j0, min(idxTile, vis-j0)})
		}
	}
	if clean {
		for bi := 0; bi < in.B; bi++ {
			for t := 0; t < in.NextN; t++ {
				r := bi*in.NextN + t
				fillNegInf(logits[r*w+in.Visible(bi, t) : (r+1)*w])
			}
		}
	}
	ks := b.ks
	rows := in.NextN
	return par.For(ctx, len(items), b.workers(), func() (func(int), func()) {
		sc := idxPool.Get().(*idxScratch)
		var scales [idxTile]float32
		return func(k int) {
			it := items[k]
			np := roundUp(it.n, 64)
			sc.q = growF(sc.q, rows*h*d)
			ks.DecodeE4M3Rows(sc.q, d, in.Q[it.b*rows*h*d:], d, rows*h, d)
			sc.kr = growF(sc.kr, np*d)
			// Gather the tile's keys block by block through the table.
			for j := it.j0; j < it.j0+it.n; {
				blk := int(in.BlockTable[it.b*in.MaxBlocks+j/bkv])
				slot := j % bkv
				cnt := min(bkv-slot, it.j0+it.n-j)
				codes := c.BlockCodes(blk)
				ks.DecodeE4M3Rows(sc.kr[(j-it.j0)*d:], d, codes[slot*d:], d, cnt, d)
				for s := 0; s < cnt; s++ {
					scales[j-it.j0+s] = c.Scale(blk, slot+s)
				}
				j += cnt
			}
			padRows(sc, it.n, np, d)
			idxGroup(ks, sc, rows, h, d, it.n, np, in.Weights[it.b*rows*h:], func(t int, acc []float32) {
				r := it.b*rows + t
				hi := min(in.Visible(it.b, t), it.j0+it.n)
				out := logits[r*w : (r+1)*w]
				for j := it.j0; j < hi; j++ {
					out[j] = scales[j-it.j0] * acc[j-it.j0]
				}
			})
		}, func() { idxPool.Put(sc) }
	})
}

func fillNegInf(s []float32) {
	for i := range s {
		s[i] = gemm.NegInf
	}
}
