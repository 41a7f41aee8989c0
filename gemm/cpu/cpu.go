package cpu

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/internal/kernels"
	"github.com/fireflyer-go/fireflyer/internal/par"
	"github.com/fireflyer-go/fireflyer/internal/platform"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Options configures a Backend.
type Options struct {
	// Workers caps the goroutines one call uses (like DeepGEMM's
	// set_num_sms caps the SMs); 0 means GOMAXPROCS, a negative value is
	// refused (ErrOptions).
	Workers int
	// Kernels selects the micro-kernel set: "avx512" (needs AVX-512 F, BW
	// and DQ), "avx2" (AVX2+FMA), "neon" (arm64 Advanced SIMD), "go"
	// (alias "generic": pure Go), or "" for the best this CPU and build run. Results of the sets agree within
	// float32 rounding; each is deterministic.
	Kernels string
}

// ErrKernels is wrapped by the error of a Backend whose Options.Kernels
// names an unknown kernel set or one this CPU or build cannot run.
var ErrKernels = errors.New("cpu: kernel set unknown or not supported by this CPU or build")

// ErrOptions is wrapped by the error of a Backend whose Options hold a value
// outside their range (a negative Workers).
var ErrOptions = errors.New("cpu: bad options")

// Backend is the packed SIMD implementation of gemm.Backend. It is safe
// for concurrent use; each Backend holds its own kernel selection, so
// backends on different kernel sets may run at the same time.
type Backend struct {
	opt Options
	ks  kernels.Set
	err error // a bad Options.Kernels, returned by every call
}

// New returns a Backend configured by o (the zero Options: the best kernel
// set of this CPU, GOMAXPROCS goroutines per call). If o is bad (see
// NewBackend), every call of the Backend returns NewBackend's error.
func New(o Options) *Backend {
	b, err := NewBackend(o)
	if err != nil {
		return &Backend{opt: o, err: err}
	}
	return b
}

// NewBackend returns a Backend configured by o, or an error wrapping
// ErrKernels if o.Kernels names an unknown set or one this CPU or build
// cannot run, or ErrOptions if o.Workers is negative.
func NewBackend(o Options) (*Backend, error) {
	if o.Workers < 0 {
		return nil, fmt.Errorf("%w: Workers %d is negative (0 means GOMAXPROCS)", ErrOptions, o.Workers)
	}
	ks, err := kernels.ForName(o.Kernels)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKernels, err)
	}
	return &Backend{opt: o, ks: ks}, nil
}

func init() {
	gemm.Register("cpu", "packed FP8/BF16 GEMM (AVX-512/AVX2/NEON kernels, pure Go otherwise)", nil,
		func(o gemm.Options) (gemm.Backend, error) {
			return NewBackend(Options{Workers: o.Workers, Kernels: o.Kernels})
		})
}

// Name returns "cpu".
func (*Backend) Name() string { return "cpu" }

// Kernel names the micro-kernel set New selects on this machine: "avx512",
// "avx2", "neon" or "go".
func Kernel() string { return kernels.Best().String() }

// Kernel names the Backend's micro-kernel set: "avx512", "avx2", "neon" or
// "go".
func (b *Backend) Kernel() string { return b.ks.String() }

// PeakLoop runs iters iterations of a register-only FMA loop of the
// Backend's kernel set on the calling goroutine and returns the float32
// FLOPs it performed (2 per lane per FMA): the denominator of "fraction of
// peak" in benchmarks. The "go" set has no peak loop and returns 0.
func (b *Backend) PeakLoop(iters int) float64 { return b.ks.PeakLoop(iters) }

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

// fp8Call returns a pooled call (give it back with putCall) set up for the
// FP8 operands am, bm and the output dm, or the Backend's construction
// error, or gemm.HostFP8's error for storage the host cannot address.
func (b *Backend) fp8Call(ctx context.Context, am, bm *tensor.FP8Matrix, dm *gemm.Out) (*call, error) {
	if b.err != nil {
		return nil, b.err
	}
	a, bh, d, err := gemm.HostFP8("cpu", am, bm, dm)
	if err != nil {
		return nil, err
	}
	c := getCall(ctx, d, b.ks, b.workers())
	c.fp8, c.fa, c.fb = true, a, bh
	c.k, c.n = a.K, bm.Rows
	return c, nil
}

// GemmNT computes D = C + A·Bᵀ (DeepGEMM fp8_gemm_nt). It receives
// arguments gemm.FP8GemmNT validated. Errors: ctx's error if it is
// cancelled.
func (b *Backend) GemmNT(ctx context.Context, am, bm *tensor.FP8Matrix, dm *gemm.Out) error {
	c, err := b.fp8Call(ctx, am, bm, dm)
	if err != nil {
		return err
	}
	defer putCall(c)
	c.segs = append(c.segs, segment{rows: c.fa.Rows})
	return c.run()
}

// GroupedContiguousNT computes D[m] = C[m] + A[m]·B[mIndices[m]]ᵀ for rows
// with mIndices[m] ≥ 0 (DeepGEMM m_grouped_fp8_gemm_nt_contiguous); rows
// with −1 are left untouched or, with d.ZeroUnused, zeroed. It receives
// arguments gemm.GroupedContiguousNT validated. Errors: ctx's error.
func (b *Backend) GroupedContiguousNT(ctx context.Context, am, bm *tensor.FP8Matrix, dm *gemm.Out, mIndices []int32) error {
	c, err := b.fp8Call(ctx, am, bm, dm)
	if err != nil {
		return err
	}
	defer putCall(c)
	c.contiguousSegs(mIndices)
	return c.run()
}

// contiguousSegs turns runs of equal non-negative mIndices into segments;
// −1 rows are skipped (and zeroed on request).
func (c *call) contiguousSegs(mIndices []int32) {
	d := c.d
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
}

// GroupedMaskedNT computes D[g,m] = C[g,m] + A[g,m]·B[g]ᵀ for m <
// maskedM[g] (DeepGEMM m_grouped_fp8_gemm_nt_masked); other rows are left
// untouched or, with d.ZeroUnused, zeroed. expectedM is not needed: tiles
// are sized from maskedM itself. It receives arguments
// gemm.GroupedMaskedNT validated. Errors: ctx's error.
func (b *Backend) GroupedMaskedNT(ctx context.Context, am, bm *tensor.FP8Matrix, dm *gemm.Out, maskedM []int32, expectedM int) error {
	c, err := b.fp8Call(ctx, am, bm, dm)
	if err != nil {
		return err
	}
	defer putCall(c)
	c.maskedSegs(maskedM)
	return c.run()
}

// maskedSegs makes one segment of the first maskedM[g] rows of every group
// g of A; the other rows are skipped (and zeroed on request).
func (c *call) maskedSegs(maskedM []int32) {
	a, d := c.fa, c.d
	for g, mm := range maskedM {
		if mm > 0 {
			c.segs = append(c.segs, segment{aG: g, rows: int(mm), bG: g, dRow: g * a.Rows})
		}
		if d.ZeroUnused && int(mm) < a.Rows {
			zeroRows(d, g*a.Rows+int(mm), (g+1)*a.Rows)
		}
	}
}

// BF16GemmNT computes D = C + A·Bᵀ for BF16 operands with float32
// accumulation (DeepGEMM bf16_gemm_nt). It receives arguments
// gemm.BF16GemmNT validated. Errors: ctx's error.
func (b *Backend) BF16GemmNT(ctx context.Context, am, bm *gemm.BF16Matrix, dm *gemm.Out) error {
	if b.err != nil {
		return b.err
	}
	a, bh, d, err := gemm.HostBF16("cpu", am, bm, dm)
	if err != nil {
		return err
	}
	c := getCall(ctx, d, b.ks, b.workers())
	defer putCall(c)
	c.ha, c.hb = a, bh
	c.k, c.n = a.K, bm.Rows
	c.segs = append(c.segs, segment{rows: a.Rows})
	return c.run()
}

func zeroRows(d gemm.OutHost, r0, r1 int) {
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

// chunk is a block of at most tileLimits rows of one segment; its A panels may
// be packed once for all K blocks (apack offset) before the tiles run.
type chunk struct {
	seg, m0, mc int
	apack       int // offset of its packed A in call.apack, −1 if packed per tile
}

// tile is one unit of work: a chunk × a range of columns.
type tile struct{ chunk, n0, nc int }

// window is a run of chunks whose A is pre-packed together, and their
// tiles: chunks [c0, c1), tiles [t0, t1).
type window struct{ c0, c1, t0, t1 int }

// Tile limits: rows of A per chunk, columns of B per tile, K per block.
const (
	bk         = tensor.ScaleBlock
	serialMACs = 1 << 21 // below this, one goroutine
)

// Tile limits, tuned by thread-CPU-time measurements on an AMD EPYC with
// 48 KiB L1d and 1 MiB L2 per core: a 256×192 float32 C tile (192 KiB), a
// 256×128 A block (128 KiB) and 192 decoded B rows (96 KiB) stay in L2.
const (
	mcMax       = 256
	ncMax       = 192
	prepackMax  = 4 << 20 // floats of pre-packed A per window (16 MiB)
	prepackKMax = 2048    // pre-pack A only up to this K
)

// call holds one call's state; it is pooled.
type call struct {
	ctx     context.Context
	ks      kernels.Set
	d       gemm.OutHost   // the output, resolved to host slices
	fp8     bool           // an FP8 call (fa, fb) rather than BF16 (ha, hb)
	fa, fb  tensor.FP8Host // FP8 operands, resolved once per call
	fp4     fp4State       // an FP8×FP4 call's B (fp4.go)
	ha, hb  gemm.BF16Host  // BF16 operands, resolved once per call
	k, n    int
	workers int

	segs    []segment
	chunks  []chunk
	tiles   []tile
	nj      int // tiles per chunk: every chunk has the same column split
	windows []window
	win     window    // the window being run
	apack   []float32 // pre-packed A: per chunk, per K block, [kc][mcPad]

	phase int // 0: pack A, 1: tiles
	next  atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error
}

var callPool = sync.Pool{New: func() any { return new(call) }}

func getCall(ctx context.Context, d gemm.OutHost, ks kernels.Set, workers int) *call {
	c := callPool.Get().(*call)
	c.ctx, c.d, c.ks, c.workers = ctx, d, ks, max(workers, 1)
	return c
}

func putCall(c *call) {
	c.ctx, c.err, c.fp8 = nil, nil, false
	c.fp4.reset()
	c.d, c.fa, c.fb, c.ha, c.hb = gemm.OutHost{}, tensor.FP8Host{}, tensor.FP8Host{}, gemm.BF16Host{}, gemm.BF16Host{}
	c.segs, c.chunks, c.tiles, c.windows = c.segs[:0], c.chunks[:0], c.tiles[:0], c.windows[:0]
	callPool.Put(c)
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

func (c *call) kBlocks() int { return (c.k + bk - 1) / bk }

// plan splits the segments into chunks and tiles.
func (c *call) plan() {
	mr, nr := c.ks.MR(), c.ks.NR()
	mcMax, ncMax, pkK := tileLimits(c.ks.Level())
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
	// With few tiles, make their count a multiple of the workers so that
	// none idles at the end.
	if t := len(c.chunks) * nj; t < 8*c.workers && t%c.workers != 0 {
		if r := roundUp(nj, c.workers); r <= panels {
			nj = r
		}
	}
	pp := (panels + nj - 1) / nj
	c.nj = (panels + pp - 1) / pp
	// Pre-pack A once per chunk when several tiles share it, in windows of
	// chunks of at most prepackMax floats (at least one chunk each). At
	// large K a chunk's packed float32 A (mc·K·4 bytes) outgrows L2 and
	// every tile would stream it back from L3 or memory; decoding A's FP8
	// rows again per tile and K block (a quarter of the bytes, in L1/L2) is
	// then faster (+7% at N=576, K=7168 on the development box).
	prepack := nj > 1 && c.k <= pkK
	off, maxOff := 0, 0
	win := window{}
	for ci := range c.chunks {
		size := roundUp(c.chunks[ci].mc, mr) * c.kBlocks() * bk
		if prepack {
			if off > 0 && off+size > prepackMax {
				win.c1, win.t1 = ci, len(c.tiles)
				c.windows = append(c.windows, win)
				win = window{c0: ci, t0: len(c.tiles)}
				off = 0
			}
			c.chunks[ci].apack = off
			off += size
			maxOff = max(maxOff, off)
		}
		for p0 := 0; p0 < panels; p0 += pp {
			n0 := p0 * nr
			c.tiles = append(c.tiles, tile{chunk: ci, n0: n0, nc: min(pp*nr, c.n-n0)})
		}
	}
	win.c1, win.t1 = len(c.chunks), len(c.tiles)
	c.windows = append(c.windows, win)
	if prepack {
		c.apack = grow(c.apack, maxOff)
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
	if c.fp4.on && c.fp4.windowed() {
		return c.runFP4()
	}
	return c.runWindows()
}

// runWindows runs, for every window of chunks, the pre-packing of their A
// (when planned) and then their tiles (those tileAt lists).
func (c *call) runWindows() error {
	for _, win := range c.windows {
		c.win = win
		if c.chunks[win.c0].apack >= 0 {
			c.phase = 0
			c.next.Store(0)
			par.Run(c, &c.wg, min(c.workers, (win.c1-win.c0)*c.kBlocks())-1)
			if c.err != nil {
				return c.err
			}
		}
		c.phase = 1
		c.next.Store(0)
		par.Run(c, &c.wg, min(c.workers, win.t1-win.t0)-1)
		if c.err != nil {
			return c.err
		}
	}
	return nil
}

// Done releases the call's WaitGroup (par.Runner).
func (c *call) Done() { c.wg.Done() }

func (c *call) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.next.Store(1 << 62)
}

// Loop claims items of the current phase until none are left (par.Runner).
func (c *call) Loop() {
	w := workPool.Get().(*work)
	defer workPool.Put(w)
	if c.phase == phaseDecodeB {
		c.decodeBLoop(w)
		return
	}
	if c.phase == 0 {
		kbs := c.kBlocks()
		for kbs > 0 {
			i := int(c.next.Add(1) - 1)
			ci, ok := c.packChunkAt(i / kbs)
			if !ok {
				return
			}
			ch := &c.chunks[ci]
			kb := i % kbs
			mp := roundUp(ch.mc, c.ks.MR())
			dst := c.apack[ch.apack+kb*bk*mp:]
			c.packA(w, dst, ch, kb)
		}
		return
	}
	for {
		i := int(c.next.Add(1) - 1)
		ti, ok := c.tileAt(i)
		if !ok {
			return
		}
		if err := c.ctx.Err(); err != nil {
			c.fail(err)
			return
		}
		c.runTile(w, &c.tiles[ti])
	}
}

// packChunkAt returns the index in c.chunks of the j-th chunk whose A the
// current pre-pack phase packs: the window's chunks, or for an FP8×FP4 call
// those of its group in the window; false past the last.
func (c *call) packChunkAt(j int) (int, bool) {
	if c.fp4.windowed() {
		if j >= len(c.fp4.chunks) {
			return 0, false
		}
		return c.fp4.chunks[j], true
	}
	if j >= c.win.c1-c.win.c0 {
		return 0, false
	}
	return c.win.c0 + j, true
}

// tileAt returns the index in c.tiles of item i of the current tile phase:
// the window's tiles in order, or for an FP8×FP4 call those of its B
// column window (fp4TileAt); false when i is past the last.
func (c *call) tileAt(i int) (int, bool) {
	if c.fp4.windowed() {
		return c.fp4TileAt(i)
	}
	if i >= c.win.t1-c.win.t0 {
		return 0, false
	}
	return c.win.t0 + i, true
}

// work is one participant's scratch space.
type work struct {
	arow, apack, bdec, acc, sa, sb, rows []float32
	sc                                   []float32 // one FP4 B row's scales (decodeBLoop, decodeFP4Panel)
}

var workPool = sync.Pool{New: func() any { return new(work) }}

// packA packs rows [m0, m0+mc) of chunk ch, K block kb, into dst as panels
// of MR rows laid out [kc][MR] (zero rows beyond mc): each panel's rows are
// decoded row-major into w.arow, then transposed.
func (c *call) packA(w *work, dst []float32, ch *chunk, kb int) {
	s := &c.segs[ch.seg]
	mr := c.ks.MR()
	k0 := kb * bk
	kc := min(bk, c.k-k0)
	w.arow = grow(w.arow, mr*bk)
	for i0 := 0; i0 < ch.mc; i0 += mr {
		rows := min(mr, ch.mc-i0)
		r := s.aRow + ch.m0 + i0
		if c.fp8 {
			src := c.fa.Data[(s.aG*c.fa.Rows+r)*c.fa.RowStride()+k0:]
			c.ks.DecodeE4M3Rows(w.arow, bk, src, c.fa.RowStride(), rows, kc)
		} else {
			for i := 0; i < rows; i++ {
				c.ks.CvtBF16(w.arow[i*bk:i*bk+kc], c.ha.Data[(r+i)*c.ha.RowStride()+k0:][:kc])
			}
		}
		for i := rows; i < mr; i++ {
			clear(w.arow[i*bk : i*bk+kc])
		}
		c.ks.Transpose(dst[(i0/mr)*kc*mr:], mr, w.arow, bk, kc, mr)
	}
}

func (c *call) runTile(w *work, t *tile) {
	ch := &c.chunks[t.chunk]
	s := &c.segs[ch.seg]
	mr, nr := c.ks.MR(), c.ks.NR()
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
		bp, ldb := w.bdec, bk // the B panel the micro-kernel reads
		if c.fp4.on {
			if c.fp4.windowed() {
				bp, ldb = c.fp4Panel(t.n0, k0)
			} else {
				c.decodeFP4Panel(w, s.bG, t.n0, t.nc, k0, kc)
			}
			for j := range w.sb[:t.nc] {
				w.sb[j] = 1 // B's scales are in its decoded values
			}
			scaleRun(&c.fa, s.aG, s.aRow+ch.m0, ch.mc, kb, w.sa)
		} else if c.fp8 {
			src := c.fb.Data[(s.bG*c.fb.Rows+t.n0)*c.fb.RowStride()+k0:]
			c.ks.DecodeE4M3Rows(w.bdec, bk, src, c.fb.RowStride(), t.nc, kc)
			scaleRun(&c.fb, s.bG, t.n0, t.nc, kb, w.sb)
			scaleRun(&c.fa, s.aG, s.aRow+ch.m0, ch.mc, kb, w.sa)
		} else {
			for j := 0; j < t.nc; j++ {
				n := t.n0 + j
				c.ks.CvtBF16(w.bdec[j*bk:j*bk+kc], c.hb.Data[n*c.hb.RowStride()+k0:][:kc])
				w.sb[j] = 1
			}
			for i := 0; i < ch.mc; i++ {
				w.sa[i] = 1
			}
		}
		for jp := 0; jp < np; jp += nr {
			c.ks.MicroPanels(kc, mp/mr, ap, bp[jp*ldb:], ldb, w.acc[jp*mp:], mp, w.sa, w.sb[jp:])
		}
	}
	c.store(w, mp, s.dRow+ch.m0, ch.mc, t.n0, t.nc)
}

// scaleRun writes the float32 scales of rows [r0, r0+n) of group g of m in
// K block kb to dst[:n], one run of equal scales at a time.
func scaleRun(m *tensor.FP8Host, g, r0, n, kb int, dst []float32) {
	kbs, sr := m.KBlocks(), m.ScaleRows
	base := g * m.ScaleRowsPerGroup()
	for i := 0; i < n; {
		blk := (r0 + i) / sr
		end := min(n, (blk+1)*sr-r0)
		idx := (base+blk)*kbs + kb
		var v float32
		if m.Format == tensor.ScaleUE8M0 {
			v = m.ScalesUE8M0[idx].Float32()
		} else {
			v = m.ScalesF32[idx]
		}
		for ; i < end; i++ {
			dst[i] = v
		}
	}
}

// store writes the tile's accumulator (column-major [np][ldc] in w.acc)
// plus C into D rows [r0, r0+mc), columns [n0, n0+nc). It transposes
// strips of storeRows rows at a time into w.rows (16·nc floats, in L1)
// and writes each strip out before the next, rather than the whole tile
// into an L2-sized buffer read back afterwards.
func (c *call) store(w *work, ldc, r0, mc, n0, nc int) {
	d := &c.d
	ds := d.RowStride()
	w.rows = grow(w.rows, storeRows*nc)
	for i0 := 0; i0 < mc; i0 += storeRows {
		rows := min(storeRows, mc-i0)
		c.ks.Transpose(w.rows, nc, w.acc[i0:], ldc, rows, nc)
		for i := 0; i < rows; i++ {
			off := (r0+i0+i)*ds + n0
			row := w.rows[i*nc : (i+1)*nc]
			if d.C != nil {
				for j, v := range d.C[off : off+nc] {
					row[j] += v
				}
			}
			if d.F32 != nil {
				copy(d.F32[off:off+nc], row)
			} else {
				c.ks.EncodeBF16(d.BF16[off:off+nc], row)
			}
		}
	}
}

// storeRows is the height of store's strips: a multiple of every
// transpose kernel's block (16 at AVX512, 8 at AVX2, 4 at NEON).
const storeRows = 16

// tileLimits returns the rows of A per chunk, the columns of B per tile and
// the largest K at which A is pre-packed for the kernel set of level l. The
// AVX2 set on a core with at least 2 MiB of L2 (tuned on an Intel Xeon,
// 48 KiB L1d, 2 MiB L2, one thread) takes larger tiles: a 384×480 float32
// C tile (720 KiB), its A block (192 KiB) and 480 decoded B rows (240 KiB)
// still fit, and A and B are decoded about half as often as with 256×192
// (+2–4 % at N,K = 2112,7168 and 7168,2048; 256×576, 384×576 and 512×480
// were no better). Every other level, and AVX2 with a smaller or unknown
// L2 (the AMD EPYC the limits above were tuned on), keeps the limits above.
func tileLimits(l kernels.Level) (mc, nc, pkK int) {
	if l == kernels.AVX2 && platform.L2Bytes() >= 2<<20 {
		return 384, 480, prepackKMax
	}
	return mcMax, ncMax, prepackKMax
}
