package mla

import (
	"context"
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/fireflyer-go/fireflyer/internal/kernels"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// sparseCPU is the "cpu" sparse backend. For each query row (decode: one
// (request, query token); prefill: one (query token, KV head)) every head
// that shares the row's index list is one row of a tile problem: the valid
// keys are gathered sparseTile at a time (FP8 records dequantized to float32,
// prefill rows copied), Sᵀ = K·(scale·log2e·Q)ᵀ and O += P·V run as the
// register-blocked GEMMs of the dense cpu backend, with an online softmax in
// base 2. When the problem has fewer than sparseSplitRows rows, each row's
// index list is cut into chunks of sparseChunk entries that run in parallel
// and are merged with Combine in chunk order. The cut depends only on the
// problem's shape, so results are bit-identical whatever GOMAXPROCS is.
// Unselected and invalid slots are never read.
type sparseCPU struct{ ks kernels.Set }

const (
	sparseTile      = 128 // keys gathered and multiplied at a time
	sparseChunk     = 512 // index entries per parallel chunk
	sparseSplitRows = 64  // below this many query rows, chunks run in parallel
	sparseMaxSplits = 256 // at most this many (row, chunk) partial results
)

// Name returns "cpu".
func (sparseCPU) Name() string { return "cpu" }

// Kernels returns the name of the backend's kernel set ("avx512", "avx2",
// "neon" or "go").
func (b sparseCPU) Kernels() string { return b.ks.String() }

// attnState is one goroutine's tile attention over rows query rows sharing
// their keys.
type attnState struct {
	ks              kernels.Set
	rows, mp, d, dv int
	qt              []float32 // [d][mp] Qᵀ prescaled by scale·log2e
	k               []float32 // [sparseTile][d] gathered keys, n valid
	n               int
	st              []float32 // [sparseTile][mp]
	o               []float32 // [mp][dv]
	mx, l, nm, sh   []float32 // [mp]
	all             []float32 // the pooled buffer the fields are carved from
}

func newAttnState(ks kernels.Set, rows, d, dv int) *attnState {
	mp := (rows + 15) &^ 15
	sizes := []int{d * mp, sparseTile * d, sparseTile * mp, mp * dv, mp, mp, mp, mp}
	all, part := getFloatParts(sizes)
	return &attnState{
		ks: ks, rows: rows, mp: mp, d: d, dv: dv,
		qt: part[0], k: part[1], st: part[2], o: part[3], mx: part[4], l: part[5], nm: part[6], sh: part[7],
		all: all,
	}
}

// release hands the state's buffer back to the pool.
func (s *attnState) release() { putFloats(s.all) }

// setQ writes Qᵀ of the rows (row m's d values from q(m)) prescaled by c.
func (s *attnState) setQ(q func(m int) []float32, c float32) {
	clear(s.qt)
	for m := range s.rows {
		for i, v := range q(m)[:s.d] {
			s.qt[i*s.mp+m] = v * c
		}
	}
}

func (s *attnState) reset() {
	for m := range s.mp {
		s.mx[m], s.l[m] = negInf, 0
	}
	clear(s.o)
	s.n = 0
}

// slot returns the next key row of the tile to fill, flushing a full tile.
func (s *attnState) slot() []float32 {
	if s.n == sparseTile {
		s.flush()
	}
	s.n++
	return s.k[(s.n-1)*s.d : s.n*s.d]
}

// flush runs the online softmax over the s.n gathered keys.
func (s *attnState) flush() {
	n, mp, d, dv := s.n, s.mp, s.d, s.dv
	if n == 0 {
		return
	}
	s.n = 0
	n8 := (n + 7) &^ 7
	clear(s.k[n*d : n8*d])
	s.ks.Gemm(n8, mp, d, s.k, d, 1, s.qt, mp, s.st, mp, false)
	softmaxTile(s.ks, n, mp, d, dv, s.st, s.k, s.o, s.mx, s.l, s.nm, s.sh)
}

// finish flushes and writes o [rows][dv] normalised, lse [rows] (natural,
// −Inf with o = 0 for a row that saw no key) and mx [rows] (max logit in
// natural units, −Inf likewise).
func (s *attnState) finish(o, lse, mx []float32) {
	s.flush()
	dv := s.dv
	for m := range s.rows {
		dst := o[m*dv : (m+1)*dv]
		if s.l[m] == 0 {
			clear(dst)
			lse[m], mx[m] = negInf, negInf
			continue
		}
		inv := 1 / s.l[m]
		for i, v := range s.o[m*dv : (m+1)*dv] {
			dst[i] = v * inv
		}
		lse[m] = float32((float64(s.mx[m]) + math.Log2(float64(s.l[m]))) * Ln2)
		mx[m] = float32(float64(s.mx[m]) * Ln2)
	}
}

// sparseJob describes a sparse problem to runSparse: items query rows of
// rows heads each (d-wide queries, dv-wide output), chunks index chunks per
// item; feed gathers the keys of (item, chunk) into s (after s.setQ and
// s.reset by feed itself); emit receives an item's merged result.
type sparseJob struct {
	ks                         kernels.Set
	items, rows, d, dv, chunks int
	feed                       func(s *attnState, item, chunk int)
	emit                       func(item int, o, lse, mx []float32)
}

func runSparse(ctx context.Context, j sparseJob) error {
	rows, dv := j.rows, j.dv
	if j.chunks <= 1 {
		return parallelFor(ctx, j.items, func() (func(int), func()) {
			s := newAttnState(j.ks, rows, j.d, dv)
			o, lse, mx := make([]float32, rows*dv), make([]float32, rows), make([]float32, rows)
			return func(item int) {
				j.feed(s, item, 0)
				s.finish(o, lse, mx)
				j.emit(item, o, lse, mx)
			}, s.release
		})
	}
	per := rows * (dv + 2)
	acc := getFloats(j.items * j.chunks * per)
	defer putFloats(acc)
	err := parallelFor(ctx, j.items*j.chunks, func() (func(int), func()) {
		s := newAttnState(j.ks, rows, j.d, dv)
		return func(w int) {
			a := acc[w*per : (w+1)*per]
			j.feed(s, w/j.chunks, w%j.chunks)
			s.finish(a[:rows*dv], a[rows*dv:rows*(dv+1)], a[rows*(dv+1):])
		}, s.release
	})
	if err != nil {
		return err
	}
	return parallelFor(ctx, j.items, func() (func(int), func()) {
		o, lse, mx := make([]float32, rows*dv), make([]float32, rows), make([]float32, rows)
		outs, lses := make([][]float32, j.chunks), make([]float32, j.chunks)
		return func(item int) {
			for m := range rows {
				mx[m] = negInf
				for c := range j.chunks {
					a := acc[(item*j.chunks+c)*per:][:per]
					outs[c], lses[c] = a[m*dv:(m+1)*dv], a[rows*dv+m]
					mx[m] = max(mx[m], a[rows*(dv+1)+m])
				}
				lse[m] = combine(o[m*dv:(m+1)*dv], outs, lses)
			}
			j.emit(item, o, lse, mx)
		}, func() {}
	})
}

// chunksFor returns how many chunks each of items rows of width entries is
// cut into, and the chunk length: one chunk when there are enough rows to
// keep every core busy, else chunks of about sparseChunk entries, at most
// sparseMaxSplits in all (bounding the partial results' memory).
func chunksFor(items, width int) (chunks, length int) {
	if items >= sparseSplitRows || width <= sparseChunk {
		return 1, width
	}
	chunks = min((width+sparseChunk-1)/sparseChunk, max(sparseMaxSplits/items, 1))
	return chunks, (width + chunks - 1) / chunks
}

// finishRow applies the sink and the empty-row conventions to one head's
// merged result in place: lse ±Inf or NaN (no key) gives out = 0 and lse
// +Inf; otherwise out is scaled by 1/(1+exp(sink−lse)).
func finishRow(ks kernels.Set, o []float32, lse *float32, sink []float32, h int) {
	l := *lse
	if math.IsInf(float64(l), 0) || l != l {
		clear(o)
		*lse = float32(math.Inf(1))
		return
	}
	if sink == nil {
		return
	}
	f := float32(sinkFactor(float64(l), sink[h]))
	if f != 1 {
		ks.Scal(f, o)
	}
}

// SparseDecode runs p; see SparseBackend.
func (b sparseCPU) SparseDecode(ctx context.Context, p *SparseDecodeProblem, out, lse []float32) error {
	hc, hx, err := p.hostCaches()
	if err != nil {
		return err
	}
	width := p.TopK + p.ExtraTopK
	items := p.B * p.SQ
	c := p.Scale * float32(Log2E)
	j := sparseJob{ks: b.ks, items: items, rows: p.HQ, d: HeadDim, dv: p.HeadDimV}
	var chunk int
	j.chunks, chunk = chunksFor(items, width)
	j.feed = func(s *attnState, item, ch int) {
		req := item / p.SQ
		s.setQ(func(m int) []float32 { return p.Q[(item*p.HQ+m)*HeadDim:] }, c)
		s.reset()
		lo, hi := ch*chunk, min((ch+1)*chunk, width)
		if n := int(p.TopkLength[req]); lo < n {
			for _, t := range p.Indices[item*p.TopK+lo : item*p.TopK+min(hi, n)] {
				if t != -1 {
					dequantFast(s.ks, s.slot(), hc.record(int(t)))
				}
			}
		}
		if p.ExtraCache != nil && hi > p.TopK {
			elo, ehi := max(lo-p.TopK, 0), min(hi-p.TopK, int(p.ExtraTopkLength[req]))
			for k := elo; k < ehi; k++ {
				if t := p.ExtraIndices[item*p.ExtraTopK+k]; t != -1 {
					dequantFast(s.ks, s.slot(), hx.record(int(t)))
				}
			}
		}
	}
	dv := p.HeadDimV
	j.emit = func(item int, o, l, _ []float32) {
		req, sq := item/p.SQ, item%p.SQ
		for h := range p.HQ {
			finishRow(b.ks, o[h*dv:(h+1)*dv], &l[h], p.AttnSink, h)
			copy(out[(item*p.HQ+h)*dv:][:dv], o[h*dv:(h+1)*dv])
			lse[(req*p.HQ+h)*p.SQ+sq] = l[h]
		}
	}
	return runSparse(ctx, j)
}

// SparsePrefill runs p; see SparseBackend.
func (b sparseCPU) SparsePrefill(ctx context.Context, p *SparsePrefillProblem, out, maxLogits, lse []float32) error {
	d, dv, hpk := p.DQK, p.HeadDimV, p.HQ/p.HKV
	items := p.SQ * p.HKV
	c := p.Scale * float32(Log2E)
	j := sparseJob{ks: b.ks, items: items, rows: hpk, d: d, dv: dv}
	var chunk int
	j.chunks, chunk = chunksFor(items, p.TopK)
	j.feed = func(s *attnState, item, ch int) {
		i, g := item/p.HKV, item%p.HKV
		s.setQ(func(m int) []float32 { return p.Q[(i*p.HQ+g*hpk+m)*d:] }, c)
		s.reset()
		lo, hi := ch*chunk, min((ch+1)*chunk, int(p.TopkLength[i]))
		if lo >= hi {
			return
		}
		for _, t := range p.Indices[item*p.TopK+lo : item*p.TopK+hi] {
			if t >= 0 && int(t) < p.SKV {
				copy(s.slot(), p.KV[(int(t)*p.HKV+g)*d:][:d])
			}
		}
	}
	j.emit = func(item int, o, l, mx []float32) {
		i, g := item/p.HKV, item%p.HKV
		for hh := range hpk {
			h := g*hpk + hh
			finishRow(b.ks, o[hh*dv:(hh+1)*dv], &l[hh], p.AttnSink, h)
			copy(out[(i*p.HQ+h)*dv:][:dv], o[hh*dv:(hh+1)*dv])
			lse[i*p.HQ+h], maxLogits[i*p.HQ+h] = l[hh], mx[hh]
		}
	}
	return runSparse(ctx, j)
}

// dequantFast is dequantizeFP8Row with the SIMD E4M3 decoder and scaling
// kernels; the bits are the same (one rounding of code·scale per channel).
func dequantFast(ks kernels.Set, dst []float32, rec []byte) {
	dst, rec = dst[:HeadDim], rec[:FP8BytesPerToken]
	codes := unsafe.Slice((*tensor.E4M3)(unsafe.Pointer(unsafe.SliceData(rec))), FP8NoPEDim) // E4M3 is a byte
	ks.DecodeE4M3Rows(dst, FP8NoPEDim, codes, FP8NoPEDim, 1, FP8NoPEDim)
	for g := range FP8NumScales {
		s := math.Float32frombits(binary.LittleEndian.Uint32(rec[fp8ScaleOff+4*g:]))
		ks.Scal(s, dst[g*FP8ScaleGroup:(g+1)*FP8ScaleGroup])
	}
	for i := range FP8RopeDim {
		dst[FP8NoPEDim+i] = tensor.BF16(binary.LittleEndian.Uint16(rec[fp8RopeOff+2*i:])).Float32()
	}
}
