// Package cpu is the fast CPU backend of gemm: DeepGEMM's blocked FP8 GEMM
// restructured for x86 SIMD. Per 128-wide K block it decodes the E4M3
// panels of A and B to float32 once into packed buffers, runs a
// register-blocked micro-kernel over them (AVX-512: a 32×12 tile in 24 zmm
// accumulators; AVX2+FMA: 16×6 in 12 ymm; chosen at run time, pure Go under
// the noasm tag) and promotes each 128-K partial with A's and B's scales
// into a float32 C tile, exactly the two-level accumulation of DeepGEMM's
// SM90 kernel (deep_gemm/include/deep_gemm/fp8_gemm.cuh). Tiles of the
// output are spread over goroutines; buffers come from sync.Pool, so a
// steady-state call does not allocate.
//
// Results agree with gemm/ref within calc_diff 1e−5 (only rounding order
// differs: the cpu kernels use fused multiply-add).
package cpu

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/internal/gemm/kernels"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Options configures a Backend.
type Options struct {
	// Workers caps the goroutines one call uses (like DeepGEMM's
	// set_num_sms caps the SMs); 0 means GOMAXPROCS.
	Workers int
}

// Backend is the packed SIMD implementation of gemm.Backend. It is safe
// for concurrent use.
type Backend struct{ opt Options }

// New returns a Backend that uses GOMAXPROCS goroutines per call.
func New() *Backend { return &Backend{} }

// NewWithOptions returns a Backend configured by o.
func NewWithOptions(o Options) *Backend { return &Backend{opt: o} }

// Name returns "cpu".
func (*Backend) Name() string { return "cpu" }

// Kernel names the micro-kernel set in use: "avx512", "avx2" or "go".
func Kernel() string { return kernels.Impl }

// Caps reports full support: every call, both scale formats, both output
// dtypes, C accumulation, strides, any K and N.
func (*Backend) Caps() gemm.Caps {
	return gemm.Caps{Contiguous: true, Masked: true, BF16: true, ScalesF32: true, ScalesUE8M0: true,
		OutBF16: true, OutF32: true, Accumulate: true, Strided: true, KAlign: 1, NAlign: 1}
}

func (b *Backend) workers() int {
	if b.opt.Workers > 0 {
		return b.opt.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// GemmNT computes D = C + A·Bᵀ (DeepGEMM fp8_gemm_nt). Errors: those of
// gemm.ValidateGemmNT, or ctx's error if it is cancelled.
func (b *Backend) GemmNT(ctx context.Context, a, bm *gemm.FP8Matrix, d *gemm.Out) error {
	if err := gemm.ValidateGemmNT(a, bm, d); err != nil {
		return err
	}
	c := getCall(ctx, d, b.workers())
	defer putCall(c)
	c.fa, c.fb = a, bm
	c.k, c.n = a.K, bm.Rows
	c.segs = append(c.segs, segment{rows: a.Rows})
	return c.run()
}

// GroupedContiguousNT computes D[m] = C[m] + A[m]·B[mIndices[m]]ᵀ for rows
// with mIndices[m] ≥ 0 (DeepGEMM m_grouped_fp8_gemm_nt_contiguous); rows
// with −1 are left untouched or, with d.ZeroUnused, zeroed. Errors: those
// of gemm.ValidateContiguous, or ctx's error.
func (b *Backend) GroupedContiguousNT(ctx context.Context, a, bm *gemm.FP8Matrix, d *gemm.Out, mIndices []int32) error {
	if err := gemm.ValidateContiguous(a, bm, d, mIndices); err != nil {
		return err
	}
	c := getCall(ctx, d, b.workers())
	defer putCall(c)
	c.fa, c.fb = a, bm
	c.k, c.n = a.K, bm.Rows
	// Runs of equal non-negative indices become segments; −1 rows are
	// skipped (and zeroed on request).
	for m := 0; m < len(mIndices); {
		g := mIndices[m]
		e := m + 1
		for e < len(mIndices) && mIndices[e] == g {
			e++
		}
		if g >= 0 {
			c.segs = append(c.segs, segment{aRow: m, rows: e - m, bG: int(g), dRow: m})
		} else if d.ZeroUnused {
			zeroRows(d, m, e)
		}
		m = e
	}
	return c.run()
}

// GroupedMaskedNT computes D[g,m] = C[g,m] + A[g,m]·B[g]ᵀ for m <
// maskedM[g] (DeepGEMM m_grouped_fp8_gemm_nt_masked); other rows are left
// untouched or, with d.ZeroUnused, zeroed. expectedM is not needed: tiles
// are sized from maskedM itself. Errors: those of gemm.ValidateMasked, or
// ctx's error.
func (b *Backend) GroupedMaskedNT(ctx context.Context, a, bm *gemm.FP8Matrix, d *gemm.Out, maskedM []int32, expectedM int) error {
	if err := gemm.ValidateMasked(a, bm, d, maskedM, expectedM); err != nil {
		return err
	}
	c := getCall(ctx, d, b.workers())
	defer putCall(c)
	c.fa, c.fb = a, bm
	c.k, c.n = a.K, bm.Rows
	for g, mm := range maskedM {
		if mm > 0 {
			c.segs = append(c.segs, segment{aG: g, rows: int(mm), bG: g, dRow: g * a.Rows})
		}
		if d.ZeroUnused && int(mm) < a.Rows {
			zeroRows(d, g*a.Rows+int(mm), (g+1)*a.Rows)
		}
	}
	return c.run()
}

// BF16GemmNT computes D = C + A·Bᵀ for BF16 operands with float32
// accumulation (DeepGEMM bf16_gemm_nt). Errors: those of
// gemm.ValidateBF16, or ctx's error.
func (b *Backend) BF16GemmNT(ctx context.Context, a, bm *gemm.BF16Matrix, d *gemm.Out) error {
	if err := gemm.ValidateBF16(a, bm, d); err != nil {
		return err
	}
	c := getCall(ctx, d, b.workers())
	defer putCall(c)
	c.ha, c.hb = a, bm
	c.k, c.n = a.K, bm.Rows
	c.segs = append(c.segs, segment{rows: a.Rows})
	return c.run()
}

func zeroRows(d *gemm.Out, r0, r1 int) {
	for r := r0; r < r1; r++ {
		off := r * d.RowStride()
		if d.F32 != nil {
			clear(d.F32[off : off+d.Cols])
		} else {
			clear(d.BF16[off : off+d.Cols])
		}
	}
}

// segment is a run of rows computed against one group of B: A rows
// [aRow, aRow+rows) of group aG, B group bG, D rows from dRow.
type segment struct{ aG, aRow, rows, bG, dRow int }

// chunk is a block of at most mcMax rows of one segment; its A panels may
// be packed once for all K blocks (apack offset) before the tiles run.
type chunk struct {
	seg, m0, mc int
	apack       int // offset of its packed A in call.apack, −1 if packed per tile
}

// tile is one unit of work: a chunk × a range of columns.
type tile struct{ chunk, n0, nc int }

// Tile limits: rows of A per chunk, columns of B per tile, K per block.
const (
	mcMax      = 256
	ncMax      = 384
	bk         = gemm.BlockK
	prepackMax = 4 << 20 // floats of pre-packed A (16 MiB)
	serialMACs = 1 << 21 // below this, one goroutine
)

// call holds one call's state; it is pooled.
type call struct {
	ctx     context.Context
	d       *gemm.Out
	fa, fb  *gemm.FP8Matrix
	ha, hb  *gemm.BF16Matrix
	k, n    int
	workers int

	segs   []segment
	chunks []chunk
	tiles  []tile
	apack  []float32 // pre-packed A: per chunk, per K block, [kc][mcPad]

	phase int // 0: pack A, 1: tiles
	next  atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error
}

var callPool = sync.Pool{New: func() any { return new(call) }}

func getCall(ctx context.Context, d *gemm.Out, workers int) *call {
	c := callPool.Get().(*call)
	c.ctx, c.d, c.workers = ctx, d, max(workers, 1)
	return c
}

func putCall(c *call) {
	c.ctx, c.d, c.fa, c.fb, c.ha, c.hb, c.err = nil, nil, nil, nil, nil, nil, nil
	c.segs, c.chunks, c.tiles = c.segs[:0], c.chunks[:0], c.tiles[:0]
	callPool.Put(c)
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

func (c *call) kBlocks() int { return (c.k + bk - 1) / bk }

// plan splits the segments into chunks and tiles.
func (c *call) plan() {
	mr, nr := kernels.MR, kernels.NR
	rows := 0
	for si, s := range c.segs {
		rows += s.rows
		if s.rows == 0 {
			continue
		}
		nm := (s.rows + mcMax - 1) / mcMax
		mc := roundUp((s.rows+nm-1)/nm, mr)
		for m0 := 0; m0 < s.rows; m0 += mc {
			c.chunks = append(c.chunks, chunk{seg: si, m0: m0, mc: min(mc, s.rows-m0), apack: -1})
		}
	}
	if len(c.chunks) == 0 {
		return
	}
	// Columns: as wide as ncMax allows, but enough tiles to keep every
	// worker busy (at least 2 per worker), and never narrower than 8
	// micro-tiles.
	panels := (c.n + nr - 1) / nr
	nj := (panels*nr + ncMax - 1) / ncMax
	if want := (2*c.workers + len(c.chunks) - 1) / len(c.chunks); nj < want {
		nj = min(want, max(panels/8, nj))
	}
	pp := (panels + nj - 1) / nj
	// Pre-pack A once per chunk when it is small and reused by several
	// tiles.
	total := 0
	for _, ch := range c.chunks {
		total += roundUp(ch.mc, mr) * c.kBlocks() * bk
	}
	prepack := c.fa != nil && nj > 1 && total <= prepackMax
	if prepack {
		off := 0
		for i := range c.chunks {
			c.chunks[i].apack = off
			off += roundUp(c.chunks[i].mc, mr) * c.kBlocks() * bk
		}
		c.apack = grow(c.apack, off)
	}
	for ci := range c.chunks {
		for p0 := 0; p0 < panels; p0 += pp {
			n0 := p0 * nr
			c.tiles = append(c.tiles, tile{chunk: ci, n0: n0, nc: min(pp*nr, c.n-n0)})
		}
	}
	if macs := rows * c.n * c.k; macs < serialMACs {
		c.workers = 1
	}
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n, n+n/4)
	}
	return s[:n]
}

func (c *call) run() error {
	if c.n == 0 || len(c.segs) == 0 {
		return nil
	}
	c.plan()
	if len(c.tiles) == 0 {
		return nil
	}
	if c.chunks[0].apack >= 0 {
		c.phase = 0
		c.next.Store(0)
		parallel(c, &c.wg, min(c.workers, len(c.chunks)*c.kBlocks())-1)
		if c.err != nil {
			return c.err
		}
	}
	c.phase = 1
	c.next.Store(0)
	parallel(c, &c.wg, min(c.workers, len(c.tiles))-1)
	return c.err
}

func (c *call) done() { c.wg.Done() }

func (c *call) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.next.Store(1 << 62)
}

// loop claims items of the current phase until none are left.
func (c *call) loop() {
	w := workPool.Get().(*work)
	defer workPool.Put(w)
	if c.phase == 0 {
		kbs := c.kBlocks()
		for {
			i := int(c.next.Add(1) - 1)
			if i >= len(c.chunks)*kbs {
				return
			}
			ch := &c.chunks[i/kbs]
			kb := i % kbs
			mp := roundUp(ch.mc, kernels.MR)
			dst := c.apack[ch.apack+kb*bk*mp:]
			c.packA(w, dst, ch, kb)
		}
	}
	for {
		i := int(c.next.Add(1) - 1)
		if i >= len(c.tiles) {
			return
		}
		if err := c.ctx.Err(); err != nil {
			c.fail(err)
			return
		}
		c.runTile(w, &c.tiles[i])
	}
}

// work is one participant's scratch space.
type work struct {
	arow, apack, bdec, acc, sa, sb []float32
}

var workPool = sync.Pool{New: func() any { return new(work) }}

func e4m3Bytes(s []tensor.E4M3) []uint8 {
	return unsafe.Slice((*uint8)(unsafe.SliceData(s)), len(s))
}

func decodeBF16(dst []float32, src []tensor.BF16) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = v.Float32()
	}
}

// packA packs rows [m0, m0+mc) of chunk ch, K block kb, into dst as panels
// of MR rows laid out [kc][MR] (zero rows beyond mc).
func (c *call) packA(w *work, dst []float32, ch *chunk, kb int) {
	s := &c.segs[ch.seg]
	mr := kernels.MR
	k0 := kb * bk
	kc := min(bk, c.k-k0)
	w.arow = grow(w.arow, bk)
	mp := roundUp(ch.mc, mr)
	for i := 0; i < mp; i++ {
		panel := dst[(i/mr)*kc*mr : (i/mr+1)*kc*mr]
		ii := i % mr
		if i >= ch.mc {
			for p := 0; p < kc; p++ {
				panel[p*mr+ii] = 0
			}
			continue
		}
		r := s.aRow + ch.m0 + i
		row := w.arow[:kc]
		if c.fa != nil {
			kernels.DecodeE4M3(row, e4m3Bytes(c.fa.Row(s.aG, r)[k0:k0+kc]))
		} else {
			decodeBF16(row, c.ha.Data[r*c.ha.RowStride()+k0:][:kc])
		}
		for p, v := range row {
			panel[p*mr+ii] = v
		}
	}
}

func (c *call) runTile(w *work, t *tile) {
	ch := &c.chunks[t.chunk]
	s := &c.segs[ch.seg]
	mr, nr := kernels.MR, kernels.NR
	mp, np := roundUp(ch.mc, mr), roundUp(t.nc, nr)
	w.acc = grow(w.acc, mp*np)
	clear(w.acc)
	w.sa, w.sb = grow(w.sa, mp), grow(w.sb, np)
	clear(w.sa)
	clear(w.sb)
	w.bdec = grow(w.bdec, np*bk)
	clear(w.bdec[t.nc*bk:])
	if ch.apack < 0 {
		w.apack = grow(w.apack, mp*bk)
	}
	for kb := 0; kb < c.kBlocks(); kb++ {
		k0 := kb * bk
		kc := min(bk, c.k-k0)
		var ap []float32
		if ch.apack >= 0 {
			ap = c.apack[ch.apack+kb*bk*mp:]
		} else {
			ap = w.apack
			c.packA(w, ap, ch, kb)
		}
		for j := 0; j < t.nc; j++ {
			n := t.n0 + j
			if c.fb != nil {
				kernels.DecodeE4M3(w.bdec[j*bk:j*bk+kc], e4m3Bytes(c.fb.Row(s.bG, n)[k0:k0+kc]))
				w.sb[j] = c.fb.Scale(s.bG, n, kb)
			} else {
				decodeBF16(w.bdec[j*bk:j*bk+kc], c.hb.Data[n*c.hb.RowStride()+k0:][:kc])
				w.sb[j] = 1
			}
		}
		for i := 0; i < ch.mc; i++ {
			if c.fa != nil {
				w.sa[i] = c.fa.Scale(s.aG, s.aRow+ch.m0+i, kb)
			} else {
				w.sa[i] = 1
			}
		}
		for jp := 0; jp < np; jp += nr {
			for ip := 0; ip < mp; ip += mr {
				kernels.Micro(kc, ap[ip*kc:], w.bdec[jp*bk:], bk, w.acc[jp*mp+ip:], mp, w.sa[ip:], w.sb[jp:])
			}
		}
	}
	c.store(w.acc, mp, s.dRow+ch.m0, ch.mc, t.n0, t.nc)
}

// store writes acc (column-major [nc][ldc]) plus C into D rows [r0, r0+mc),
// columns [n0, n0+nc).
func (c *call) store(acc []float32, ldc, r0, mc, n0, nc int) {
	d := c.d
	ds := d.RowStride()
	for i := 0; i < mc; i++ {
		off := (r0+i)*ds + n0
		if d.C != nil {
			cr := d.C[off : off+nc]
			for j := range cr {
				acc[j*ldc+i] += cr[j]
			}
		}
		if d.F32 != nil {
			out := d.F32[off : off+nc]
			for j := range out {
				out[j] = acc[j*ldc+i]
			}
		} else {
			out := d.BF16[off : off+nc]
			for j := range out {
				out[j] = tensor.BF16FromFloat32(acc[j*ldc+i])
			}
		}
	}
}
