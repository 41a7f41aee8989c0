package gemm_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// TestIndexerCacheLayout pins DeepGEMM's fused_kv_cache bytes: per block
// the FP8 rows of its tokens, then their float32 scales, little-endian.
func TestIndexerCacheLayout(t *testing.T) {
	c, err := gemm.NewIndexerCache(2, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	if c.BlockBytes() != 16 || len(c.Data) != 32 {
		t.Fatalf("block bytes %d, data %d; want 16, 32", c.BlockBytes(), len(c.Data))
	}
	if err := c.SetToken(1, 1, []tensor.E4M3{1, 2, 3, 4}, 0.5); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 32)
	copy(want[16+4:], []byte{1, 2, 3, 4})
	copy(want[16+8+4:], []byte{0, 0, 0, 0x3F}) // 0.5 = 0x3F000000
	if !slices.Equal(c.Data, want) {
		t.Fatalf("data %v, want %v", c.Data, want)
	}
	if c.Scale(1, 1) != 0.5 || !slices.Equal(c.Codes(1, 1), []tensor.E4M3{1, 2, 3, 4}) {
		t.Fatal("Scale/Codes do not read back what SetToken wrote")
	}
}

// TestIndexerCacheWriteTokens: the per-token quantizer of DeepGEMM's tests
// (amax/448, or its power-of-two ceiling), written through a block table.
func TestIndexerCacheWriteTokens(t *testing.T) {
	c, _ := gemm.NewIndexerCache(4, 2, 3)
	table := []int32{2, 0, 3}
	x := []float32{448, -224, 1, 0, 0, 0, 2, 1, 0.5, 1000, 0, -1000}
	if err := c.WriteTokens(table, 1, x, tensor.QuantOptions{}); err != nil {
		t.Fatal(err)
	}
	// Position 1 → block 2 slot 1; 2 → block 0 slot 0; 3 → block 0 slot 1;
	// 4 → block 3 slot 0.
	check := func(blk, slot int, scale float32, vals []float32) {
		t.Helper()
		if s := c.Scale(blk, slot); s != scale {
			t.Errorf("block %d slot %d: scale %v, want %v", blk, slot, s, scale)
		}
		for i, q := range c.Codes(blk, slot) {
			if q != tensor.E4M3FromFloat32(vals[i]) {
				t.Errorf("block %d slot %d code %d: %v, want e4m3(%v)", blk, slot, i, q.Float32(), vals[i])
			}
		}
	}
	check(2, 1, 1, []float32{448, -224, 1})
	check(0, 0, float32(1e-4)/448, []float32{0, 0, 0})
	check(0, 1, float32(2)/448, []float32{448, 224, 112})
	check(3, 0, float32(1000)/448, []float32{448, 0, -448})
	got, err := c.Dequantize(table, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float32{448, -224, 1, 0, 0, 0, 2, 1, 0.5, 1000, 0, -1000} {
		if g := got[3+i]; math.Abs(float64(g-want)) > 0.07*math.Abs(float64(want)) {
			t.Errorf("dequantized %d: %v, want ≈ %v", i, g, want)
		}
	}
	// UE8M0: the scale rounds up to a power of two.
	if err := c.WriteTokens(table, 0, []float32{3, 0, 0}, tensor.QuantOptions{UE8M0: true}); err != nil {
		t.Fatal(err)
	}
	if s := c.Scale(2, 0); s != 1.0/128 { // 3/448 ≈ 0.0067 → 2^−7
		t.Errorf("UE8M0 scale %v, want 2^-7", s)
	}
	for name, f := range map[string]func() error{
		"x":              func() error { return c.WriteTokens(table, 0, []float32{1, 2}, tensor.QuantOptions{}) },
		"start":          func() error { return c.WriteTokens(table, -1, x[:3], tensor.QuantOptions{}) },
		"block_table":    func() error { return c.WriteTokens(table, 5, x[:6], tensor.QuantOptions{}) },
		"block_table[1]": func() error { return c.WriteTokens([]int32{0, 9}, 1, x[:6], tensor.QuantOptions{}) },
		"fused_kv_cache": func() error {
			return (&gemm.IndexerCache{NumBlocks: 1, BlockKV: 1, HeadDim: 1}).WriteTokens(table, 0, x[:1], tensor.QuantOptions{})
		},
		"block":            func() error { return c.SetToken(4, 0, make([]tensor.E4M3, 3), 1) },
		"slot":             func() error { return c.SetToken(0, 2, make([]tensor.E4M3, 3), 1) },
		"codes":            func() error { return c.SetToken(0, 0, make([]tensor.E4M3, 2), 1) },
		"n":                func() error { _, err := c.Dequantize(table, 7); return err },
		"dims":             func() error { _, err := gemm.NewIndexerCache(0, 64, 128); return err },
		"dims (too large)": func() error { _, err := gemm.NewIndexerCache(1<<30, 64, 128); return err },
	} {
		var ae *gemm.ArgError
		err := f()
		if !errors.As(err, &ae) || !errors.Is(err, gemm.ErrShape) && !errors.Is(err, gemm.ErrIndices) {
			t.Errorf("%s: got %v, want an *ArgError", name, err)
		}
	}
	// A failed write changes nothing.
	before := slices.Clone(c.Data)
	_ = c.WriteTokens(table, 5, x[:6], tensor.QuantOptions{})
	if !slices.Equal(before, c.Data) {
		t.Error("a refused WriteTokens changed the cache")
	}
}

// TestIndexerVisibility pins the masks: [ks, ke) clipped, 1-D context
// lens causal over next_n, 2-D context lens per row.
func TestIndexerVisibility(t *testing.T) {
	in := &gemm.MQALogitsInput{SeqLenKV: 10, KS: []int32{0, -3, 4, 8, 2}, KE: []int32{1, 3, 20, 5, 2}}
	for i, want := range [][2]int{{0, 1}, {0, 3}, {4, 10}, {8, 8}, {2, 2}} {
		if lo, hi := in.Range(i); lo != want[0] || hi != want[1] {
			t.Errorf("Range(%d) = [%d,%d), want [%d,%d)", i, lo, hi, want[0], want[1])
		}
	}
	p := &gemm.PagedMQALogitsInput{B: 2, NextN: 2, ContextLens: []int32{5, 1}}
	for _, c := range [][3]int{{0, 0, 4}, {0, 1, 5}, {1, 0, 0}, {1, 1, 1}} {
		if got := p.Visible(c[0], c[1]); got != c[2] {
			t.Errorf("1-D Visible(%d,%d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
	p.ContextLens2D, p.ContextLens = true, []int32{3, 7, 2, 0}
	for _, c := range [][3]int{{0, 0, 3}, {0, 1, 7}, {1, 0, 2}, {1, 1, 0}} {
		if got := p.Visible(c[0], c[1]); got != c[2] {
			t.Errorf("2-D Visible(%d,%d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
	if p.MaxVisible(0) != 7 || p.MaxVisible(1) != 2 {
		t.Errorf("MaxVisible = %d, %d; want 7, 2", p.MaxVisible(0), p.MaxVisible(1))
	}
}

func TestPagedMQALogitsMetadata(t *testing.T) {
	// Segments of 4·64 = 256 keys: 2, 0 and 4 of them; 6 over 4 SMs start
	// at segments 0, 2, 4 and 5.
	got, err := gemm.PagedMQALogitsMetadata([]int32{300, 0, 1000}, 0, 64, 4)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{0, 0, 2, 0, 2, 2, 2, 3, 3, 0}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// 2-D: the last column of each row counts.
	got, _ = gemm.PagedMQALogitsMetadata([]int32{5, 300, 0, 0}, 2, 64, 2)
	if want := []int32{0, 0, 0, 1, 2, 0}; !slices.Equal(got, want) {
		t.Fatalf("2-D: got %v, want %v", got, want)
	}
	// More SMs than segments: the idle ones start at the end.
	got, _ = gemm.PagedMQALogitsMetadata([]int32{10}, 0, 64, 3)
	if want := []int32{0, 0, 1, 0, 1, 0, 1, 0}; !slices.Equal(got, want) {
		t.Fatalf("idle SMs: got %v, want %v", got, want)
	}
	for name, c := range map[string]struct {
		lens          []int32
		nextN, bk, sm int
	}{
		"num_sms": {[]int32{1}, 0, 64, 0}, "block_kv": {[]int32{1}, 0, 0, 4}, "next_n": {[]int32{1}, -1, 64, 4},
		"context_lens": {[]int32{1, 2, 3}, 2, 64, 4}, "negative": {[]int32{-1}, 0, 64, 4},
	} {
		if _, err := gemm.PagedMQALogitsMetadata(c.lens, c.nextN, c.bk, c.sm); !errors.Is(err, gemm.ErrShape) {
			t.Errorf("%s: got %v, want ErrShape", name, err)
		}
	}
}

// noIndexer is a Backend without the optional IndexerBackend.
type noIndexer struct{ gemm.Backend }

func TestIndexerUnsupported(t *testing.T) {
	be := noIndexer{ref.New()}
	in := &gemm.MQALogitsInput{Heads: 1, HeadDim: 1}
	if err := gemm.MQALogits(context.Background(), be, in, nil, true); !errors.Is(err, gemm.ErrUnsupported) {
		t.Fatalf("got %v, want ErrUnsupported", err)
	}
	if err := gemm.PagedMQALogits(context.Background(), be, &gemm.PagedMQALogitsInput{}, nil, true); !errors.Is(err, gemm.ErrUnsupported) {
		t.Fatalf("paged: got %v, want ErrUnsupported", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := gemm.MQALogits(ctx, ref.New(), in, nil, true); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled empty call: got %v, want context.Canceled", err)
	}
}

func TestFlattenBlockTable(t *testing.T) {
	tab, w := gemm.FlattenBlockTable([][]int32{{4, 5}, {}, {7}})
	if w != 2 || !slices.Equal(tab, []int32{4, 5, 0, 0, 7, 0}) {
		t.Fatalf("got %v, %d", tab, w)
	}
}

// TestIndexerCacheWideRows: a head_dim above one 128-wide scale block still
// gets one scale per token, amax/448 over the whole row.
func TestIndexerCacheWideRows(t *testing.T) {
	c, _ := gemm.NewIndexerCache(1, 1, 200)
	x := make([]float32, 200)
	x[5], x[150] = 1, 896
	if err := c.WriteTokens([]int32{0}, 0, x, tensor.QuantOptions{}); err != nil {
		t.Fatal(err)
	}
	if s := c.Scale(0, 0); s != 2 {
		t.Fatalf("scale %v, want 896/448 = 2", s)
	}
	codes := c.Codes(0, 0)
	if codes[150].Float32() != 448 || codes[5].Float32() != 0.5 {
		t.Fatalf("codes %v, %v; want 448, 0.5", codes[150].Float32(), codes[5].Float32())
	}
}
