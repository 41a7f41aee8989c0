package cpu

import (
	"context"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/internal/kernels"
	"github.com/fireflyer-go/fireflyer/internal/par"
	"github.com/fireflyer-go/fireflyer/tensor"
)

var _ gemm.FP4Backend = (*Backend)(nil)

// The FP8×FP4 calls run the FP8 machinery (the same chunks, tiles, A
// packing and micro-kernel) with one difference: B is FP4, decoded into
// float32 with every element's own 1×ScaleK scale already applied (exact
// for UE8M0 scales), so that the micro-kernel's B scales are all 1.
// Applying B's scales inside the product is what SM100's block-scaled MMA
// does; it also lets one micro-kernel call per 128-K block serve
// ScaleK = 32.
//
// Where the kernel set decodes E2M1 in assembly (AVX512, AVX2, NEON: a
// table lookup, on AVX-512 about twice the cost of the E4M3 decode) B is
// decoded per tile
// and K block into the tile's small B panel, as the FP8 path decodes E4M3
// (decodeFP4Panel). Elsewhere decoding is a table lookup per byte in Go,
// several times the cost of the SIMD E4M3 decode, so instead of decoding
// B's panels again for every chunk of A rows, the call decodes each group
// of B once, window of columns by window of columns, into a float32 buffer,
// and runs the tiles of that group's chunks in the window (A pre-packed as
// in the FP8 calls), their micro-kernel reading its panels straight from
// the buffer (runFP4). With the assembly decoder the per-tile decode is the
// faster one at every shape measured on AVX-512 and AVX2: the window costs
// a write and a read of four bytes per element through memory, more than
// decoding again. NEON follows the same choice on that reasoning (not
// measured on arm64 hardware).

// phaseDecodeB is the Loop phase that decodes a window of B.
const phaseDecodeB = 2

// fp4PackMax bounds the decoded B window in floats (32 MiB); a window holds
// at least one tile width. A variable so that a test can force many
// windows.
var fp4PackMax = 8 << 20

// fp4RowsPerItem is the number of B rows one decode item covers.
const fp4RowsPerItem = 16

// fp4State is the FP4 side of a call.
type fp4State struct {
	on           bool
	b            tensor.FP4Host
	g            int       // the group of B being run
	chunks       []int     // the chunks of the current window of chunks against group g
	pack         []float32 // decoded window of group g: [rows][ld]
	rows         int       // rows in pack: the window's columns, padded to NR with zeros
	ld           int       // row stride of pack in floats (fp4Stride)
	col0, col1   int       // the window's columns of B (N)
	slot0, slot1 int       // the window's column tiles of every chunk
	perTile      bool      // B decoded per tile and K block (decodeFP4Panel), not in windows
}

func (f *fp4State) reset() {
	f.on, f.b, f.chunks, f.perTile = false, tensor.FP4Host{}, f.chunks[:0], false
}

// windowed reports whether the call is an FP8×FP4 one that decodes B in
// windows (runFP4).
func (f *fp4State) windowed() bool { return f.on && !f.perTile }

// fp4Call is fp8Call for an FP4 B.
func (b *Backend) fp4Call(ctx context.Context, am *tensor.FP8Matrix, bm *tensor.FP4Matrix, dm *gemm.Out) (*call, error) {
	if b.err != nil {
		return nil, b.err
	}
	a, bh, d, err := gemm.HostFP8FP4("cpu", am, bm, dm)
	if err != nil {
		return nil, err
	}
	c := getCall(ctx, d, b.ks, b.workers())
	c.fp8, c.fa = true, a
	c.fp4.on, c.fp4.b = true, bh
	c.k, c.n = a.K, bm.Rows
	c.fp4.perTile = fp4PerTile(b.ks)
	return c, nil
}

// fp4ForceWindows makes every call decode B in windows (runFP4), whatever
// its kernel set: a test hook.
var fp4ForceWindows = false

// fp4PerTile reports whether a call on kernel set ks decodes B per tile
// and K block, as the FP8 path decodes E4M3: on the sets whose E2M1 decoder
// is assembly. The others (pure Go, several times the cost) decode each
// group of B once per call, in windows.
func fp4PerTile(ks kernels.Set) bool { return !fp4ForceWindows && ks.SIMDE2M1() }

// FP8FP4GemmNT computes D = C + A·Bᵀ for FP8 A and FP4 B (DeepGEMM
// fp8_fp4_gemm_nt). It receives arguments gemm.FP8FP4GemmNT validated.
// Errors: ctx's error if it is cancelled.
func (b *Backend) FP8FP4GemmNT(ctx context.Context, am *tensor.FP8Matrix, bm *tensor.FP4Matrix, dm *gemm.Out) error {
	c, err := b.fp4Call(ctx, am, bm, dm)
	if err != nil {
		return err
	}
	defer putCall(c)
	c.segs = append(c.segs, segment{rows: c.fa.Rows})
	return c.run()
}

// FP8FP4GroupedContiguousNT computes D[m] = C[m] + A[m]·B[mIndices[m]]ᵀ for
// rows with mIndices[m] ≥ 0 (DeepGEMM m_grouped_fp8_fp4_gemm_nt_contiguous);
// rows with −1 are left untouched or, with d.ZeroUnused, zeroed. Errors:
// ctx's error.
func (b *Backend) FP8FP4GroupedContiguousNT(ctx context.Context, am *tensor.FP8Matrix, bm *tensor.FP4Matrix, dm *gemm.Out, mIndices []int32) error {
	c, err := b.fp4Call(ctx, am, bm, dm)
	if err != nil {
		return err
	}
	defer putCall(c)
	c.contiguousSegs(mIndices)
	return c.run()
}

// FP8FP4GroupedMaskedNT computes D[g,m] = C[g,m] + A[g,m]·B[g]ᵀ for m <
// maskedM[g] (DeepGEMM m_grouped_fp8_fp4_gemm_nt_masked); other rows are
// left untouched or, with d.ZeroUnused, zeroed. expectedM is not needed.
// Errors: ctx's error.
func (b *Backend) FP8FP4GroupedMaskedNT(ctx context.Context, am *tensor.FP8Matrix, bm *tensor.FP4Matrix, dm *gemm.Out, maskedM []int32, expectedM int) error {
	c, err := b.fp4Call(ctx, am, bm, dm)
	if err != nil {
		return err
	}
	defer putCall(c)
	c.maskedSegs(maskedM)
	return c.run()
}

// runFP4 runs a planned FP8×FP4 call group by group of B: for every window
// of columns (as many column tiles as fp4PackMax allows), decode the window
// of the group, then, window of chunks by window of chunks, pre-pack the A
// of the group's chunks in it (when planned) and run their tiles in the
// column window.
func (c *call) runFP4() error {
	f := &c.fp4
	nr := c.ks.NR()
	tw := c.n // columns per tile slot
	if c.nj > 1 {
		tw = c.tiles[1].n0
	}
	f.ld = fp4Stride(c.k)
	spw := max(1, fp4PackMax/max(1, tw*f.ld))
	for g := 0; g < f.b.NumGroups(); g++ {
		used := false
		for ci := range c.chunks {
			used = used || c.segs[c.chunks[ci].seg].bG == g
		}
		if !used {
			continue // a group no row uses: not decoded
		}
		f.g = g
		for s0 := 0; s0 < c.nj; s0 += spw {
			f.slot0, f.slot1 = s0, min(s0+spw, c.nj)
			f.col0, f.col1 = s0*tw, min(f.slot1*tw, c.n)
			f.rows = roundUp(f.col1-f.col0, nr)
			f.pack = grow(f.pack, f.rows*f.ld)
			c.phase = phaseDecodeB
			c.next.Store(0)
			par.Run(c, &c.wg, min(c.workers, (f.rows+fp4RowsPerItem-1)/fp4RowsPerItem)-1)
			for _, win := range c.windows {
				c.win = win
				f.chunks = f.chunks[:0]
				for ci := win.c0; ci < win.c1; ci++ {
					if c.segs[c.chunks[ci].seg].bG == g {
						f.chunks = append(f.chunks, ci)
					}
				}
				if len(f.chunks) == 0 {
					continue
				}
				if c.chunks[win.c0].apack >= 0 {
					c.phase = 0
					c.next.Store(0)
					par.Run(c, &c.wg, min(c.workers, len(f.chunks)*c.kBlocks())-1)
				}
				c.phase = 1
				c.next.Store(0)
				par.Run(c, &c.wg, min(c.workers, len(f.chunks)*(f.slot1-f.slot0))-1)
				if c.err != nil {
					return c.err
				}
			}
		}
	}
	return nil
}

// fp4Stride returns the row stride of the decoded B for K: K rounded up to
// a cache line (16 floats) plus one, so that the NR rows one micro-kernel
// call reads do not all fall into the same L1 sets (K·4 bytes is often a
// multiple of 4 KiB: K = 1024, 2048, 4096, 7168).
func fp4Stride(k int) int {
	if k == 0 {
		return 0
	}
	return roundUp(k, 16) + 16
}

// fp4TileAt maps item i of a tile phase to a tile: the group's chunks in
// the window of chunks × the column window's slots, chunk by chunk.
func (c *call) fp4TileAt(i int) (int, bool) {
	f := &c.fp4
	ns := f.slot1 - f.slot0
	if ns <= 0 || i >= len(f.chunks)*ns {
		return 0, false
	}
	return f.chunks[i/ns]*c.nj + f.slot0 + i%ns, true
}

// fp4Panel returns the decoded B rows from column n0 of the group being run,
// from K-element k0, and their row stride, for the micro-kernel.
func (c *call) fp4Panel(n0, k0 int) ([]float32, int) {
	f := &c.fp4
	return f.pack[(n0-f.col0)*f.ld+k0:], f.ld
}

// decodeBLoop claims decode items until none are left: fp4RowsPerItem rows
// of the window each, every element multiplied by its scale (rows past N
// are zero).
func (c *call) decodeBLoop(w *work) {
	f := &c.fp4
	b := &f.b
	items := (f.rows + fp4RowsPerItem - 1) / fp4RowsPerItem
	kbs, st := b.KBlocks(), b.RowStride()
	w.sc = grow(w.sc, kbs)
	for {
		i := int(c.next.Add(1) - 1)
		if i >= items {
			return
		}
		r0 := i * fp4RowsPerItem
		for r := r0; r < min(r0+fp4RowsPerItem, f.rows); r++ {
			dst := f.pack[r*f.ld : r*f.ld+c.k]
			n := f.col0 + r
			if n >= c.n {
				clear(dst)
				continue
			}
			row := f.g*b.Rows + n
			if b.Format == tensor.ScaleUE8M0 {
				for j, e := range b.ScalesUE8M0[row*kbs : (row+1)*kbs] {
					w.sc[j] = e.Float32()
				}
			} else {
				copy(w.sc, b.ScalesF32[row*kbs:(row+1)*kbs])
			}
			c.ks.DecodeE2M1Row(dst, b.Data[row*st:row*st+c.k/2], w.sc[:kbs], b.ScaleK)
		}
	}
}

// decodeFP4Panel decodes rows [n0, n0+nc) of group g of B, K-elements
// [k0, k0+kc) (k0 a multiple of bk), each times its scale, into w.bdec as
// rows of bk floats: the FP8 path's B panel, for the micro-kernel.
func (c *call) decodeFP4Panel(w *work, g, n0, nc, k0, kc int) {
	b := &c.fp4.b
	kbs, st, sk := b.KBlocks(), b.RowStride(), b.ScaleK
	s0, ns := k0/sk, (kc+sk-1)/sk
	w.sc = grow(w.sc, ns)
	for j := 0; j < nc; j++ {
		row := g*b.Rows + n0 + j
		sc := w.sc
		if b.Format == tensor.ScaleUE8M0 {
			for i, e := range b.ScalesUE8M0[row*kbs+s0 : row*kbs+s0+ns] {
				sc[i] = e.Float32()
			}
		} else {
			sc = b.ScalesF32[row*kbs+s0 : row*kbs+s0+ns]
		}
		off := row*st + k0/2
		c.ks.DecodeE2M1Row(w.bdec[j*bk:j*bk+kc], b.Data[off:off+kc/2], sc, sk)
	}
}
