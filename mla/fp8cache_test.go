package mla_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// TestFP8RowGolden pins the 656-byte layout byte for byte: codes, the four
// little-endian float32 scales and the BF16 RoPE part.
func TestFP8RowGolden(t *testing.T) {
	row := make([]float32, mla.HeadDim)
	for i := range 128 {
		row[i] = 1 // tile 0: amax 1 → 1/448 → scale 2^-8, code e4m3(256) = 0x78
	}
	row[128] = 448 // tile 1: amax 448 → t = 1 exactly → scale 1, code 0x7E
	row[129] = -1  // → 0xB8
	// tile 2 all zero: amax floored to 1e-4 → 2^-22 (V3.2), codes 0
	row[3*128] = 449 // tile 3: t just above 1 → scale 2, 449/2 = 224.5 → 224 = 0x76
	row[512] = 1.5   // BF16 0x3FC0
	row[575] = -2    // BF16 0xC000
	rec := make([]byte, mla.FP8BytesPerToken)
	if err := mla.QuantizeFP8Row(rec, row, mla.FP8RecipeV32); err != nil {
		t.Fatal(err)
	}
	want := map[int]byte{0: 0x78, 127: 0x78, 128: 0x7E, 129: 0xB8, 130: 0, 256: 0, 384: 0x76, 385: 0}
	for i, b := range want {
		if rec[i] != b {
			t.Errorf("byte %d = %#x, want %#x", i, rec[i], b)
		}
	}
	scales := []uint32{119 << 23, 127 << 23, (127 - 22) << 23, 128 << 23}
	for g, s := range scales {
		if got := binary.LittleEndian.Uint32(rec[512+4*g:]); got != s {
			t.Errorf("scale %d bits %#x, want %#x", g, got, s)
		}
	}
	if got := binary.LittleEndian.Uint16(rec[528:]); got != 0x3FC0 {
		t.Errorf("rope[0] %#x, want 0x3fc0", got)
	}
	if got := binary.LittleEndian.Uint16(rec[654:]); got != 0xC000 {
		t.Errorf("rope[63] %#x, want 0xc000", got)
	}
	back, err := mla.DequantizeFP8Row(make([]float32, mla.HeadDim), rec)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range map[int]float32{0: 1, 128: 448, 129: -1, 256: 0, 384: 448, 512: 1.5, 575: -2} {
		if back[i] != w {
			t.Errorf("dequantized[%d] = %v, want %v", i, back[i], w)
		}
	}
}

// TestFP8Recipes pins each recipe's scale for small, boundary and ordinary
// tile maxima.
func TestFP8Recipes(t *testing.T) {
	cases := []struct {
		r    mla.FP8Recipe
		amax float32
		want float32
	}{
		{mla.FP8RecipeV32, 0, float32(math.Ldexp(1, -22))},
		{mla.FP8RecipeV32, 448, 1},
		{mla.FP8RecipeV32, 224, 0.5},
		{mla.FP8RecipeV32, 300, 1},
		{mla.FP8RecipeFlashMLATest, 0, float32(math.Ldexp(1, -13))},
		{mla.FP8RecipeFlashMLATest, 448, 1},
		{mla.FP8RecipeFlashMLATest, 449, 2},
		{mla.FP8RecipeAmax, 448, 1},
		{mla.FP8RecipeAmax, 100, 100.0 / 448},
	}
	for _, c := range cases {
		row := make([]float32, mla.HeadDim)
		row[5] = -c.amax
		rec := make([]byte, mla.FP8BytesPerToken)
		if err := mla.QuantizeFP8Row(rec, row, c.r); err != nil {
			t.Fatal(err)
		}
		if got := math.Float32frombits(binary.LittleEndian.Uint32(rec[512:])); got != c.want {
			t.Errorf("%v amax %v: scale %v, want %v", c.r, c.amax, got, c.want)
		}
	}
}

// TestFP8RoundTrip checks every dequantized channel against the E4M3 code
// of x/scale times scale, and that the error stays within E4M3's half ulp.
func TestFP8RoundTrip(t *testing.T) {
	r := newRand(7)
	for _, recipe := range []mla.FP8Recipe{mla.FP8RecipeV32, mla.FP8RecipeFlashMLATest, mla.FP8RecipeAmax} {
		row := testutil.Normal(r, mla.HeadDim, 0, 1)
		rec := make([]byte, mla.FP8BytesPerToken)
		if err := mla.QuantizeFP8Row(rec, row, recipe); err != nil {
			t.Fatal(err)
		}
		back, _ := mla.DequantizeFP8Row(make([]float32, mla.HeadDim), rec)
		for c := range mla.FP8NoPEDim {
			s := math.Float32frombits(binary.LittleEndian.Uint32(rec[512+4*(c/128):]))
			if want := tensor.E4M3FromFloat32(row[c]/s).Float32() * s; back[c] != want {
				t.Fatalf("%v channel %d: %v, want %v", recipe, c, back[c], want)
			}
			if d := math.Abs(float64(back[c] - row[c])); d > math.Abs(float64(row[c]))/16+float64(s)/512 {
				t.Fatalf("%v channel %d: %v from %v, error %g too large", recipe, c, back[c], row[c], d)
			}
		}
		for c := mla.FP8NoPEDim; c < mla.HeadDim; c++ {
			if want := tensor.BF16FromFloat32(row[c]).Float32(); back[c] != want {
				t.Fatalf("rope channel %d: %v, want %v", c, back[c], want)
			}
		}
	}
}

// TestFP8CacheRows covers SetRow/SetRowBF16/Row through a padded block
// stride, Poison and Dequantize.
func TestFP8CacheRows(t *testing.T) {
	c := &mla.FP8Cache{NumBlocks: 3, PageSize: 5, BlockStride: 5*mla.FP8BytesPerToken + 16}
	c.Data = tensor.Host[byte](make([]byte, 3*c.BlockStride))
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	if err := c.Poison(); err != nil {
		t.Fatal(err)
	}
	r := newRand(3)
	row := testutil.Normal(r, mla.HeadDim, 0, 0.3)
	if err := c.SetRow(2, 4, row, mla.FP8RecipeV32); err != nil {
		t.Fatal(err)
	}
	bf := make([]tensor.BF16, mla.HeadDim)
	tensor.EncodeBF16(bf, row)
	if err := c.SetRowBF16(1, 0, bf, mla.FP8RecipeV32); err != nil {
		t.Fatal(err)
	}
	got, err := c.Row(2, 4, make([]float32, mla.HeadDim))
	if err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, mla.FP8BytesPerToken)
	_ = mla.QuantizeFP8Row(rec, row, mla.FP8RecipeV32)
	want, _ := mla.DequantizeFP8Row(make([]float32, mla.HeadDim), rec)
	if !slices.Equal(got, want) {
		t.Fatal("Row differs from DequantizeFP8Row of the same record")
	}
	if off := c.Offset(2, 4); !slices.Equal(c.Data.(tensor.Host[byte])[off:off+mla.FP8BytesPerToken], rec) {
		t.Fatal("record not at b·stride + s·656")
	}
	poisoned, _ := c.Row(0, 0, make([]float32, mla.HeadDim))
	for i, v := range poisoned {
		if v == v {
			t.Fatalf("poisoned slot channel %d = %v, want NaN", i, v)
		}
	}
	dense, err := c.Dequantize()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := dense.Row(2, 4, 0, make([]float32, mla.HeadDim))
	if !slices.Equal(d, want) {
		t.Fatal("Dequantize differs from Row")
	}
	for _, bad := range [][2]int{{3, 0}, {0, 5}, {-1, 0}} {
		if _, err := c.Row(bad[0], bad[1], make([]float32, mla.HeadDim)); !errors.Is(err, mla.ErrShape) {
			t.Errorf("Row%v: %v, want ErrShape", bad, err)
		}
	}
	if err := c.SetRow(0, 0, row[:10], mla.FP8RecipeV32); !errors.Is(err, mla.ErrShape) {
		t.Errorf("short row: %v", err)
	}
	for _, bad := range []*mla.FP8Cache{
		nil,
		{NumBlocks: 1, PageSize: 0},
		{NumBlocks: 1, PageSize: 2, BlockStride: 10},
		{NumBlocks: 2, PageSize: 2, Data: tensor.Host[byte](make([]byte, 3*mla.FP8BytesPerToken))},
	} {
		if err := bad.Check(); !errors.Is(err, mla.ErrShape) {
			t.Errorf("Check(%+v) = %v, want ErrShape", bad, err)
		}
	}
}

// TestDecodeFP8 checks that dense decode over an FP8 cache equals, bit for
// bit, Decode over the same cache dequantized, on both backends, with
// poisoned padding slots and a shuffled block table.
func TestDecodeFP8(t *testing.T) {
	r := newRand(11)
	const page, b, sq, hq = 16, 2, 2, 8
	lens := []int32{37, 5}
	c, err := mla.NewFP8Cache(8, page)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Poison(); err != nil {
		t.Fatal(err)
	}
	table := [][]int32{{6, 1, 3}, {4, 7}} // row 1 past its first page is never read
	for i, l := range lens {
		for tok := range int(l) {
			if err := c.SetRow(int(table[i][tok/page]), tok%page, testutil.Normal(r, mla.HeadDim, 0, 0.5), mla.FP8RecipeV32); err != nil {
				t.Fatal(err)
			}
		}
	}
	q := mla.Query{Data: testutil.Normal(r, b*sq*hq*mla.HeadDim, 0, 1), B: b, SQ: sq, HQ: hq}
	dense, err := c.Dequantize()
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := mla.NewCPU(mla.CPUOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// h_q = 1 takes the cpu backend's dot/axpy path, h_q = 8 its GEMM path.
	q1 := mla.Query{Data: q.Data[:b*sq*mla.HeadDim], B: b, SQ: sq, HQ: 1}
	for _, be := range []mla.Backend{mla.NewRef(), cpu} {
		for _, q := range []mla.Query{q, q1} {
			opts := &mla.Options{NumParts: 3, Scale: mla.DeepSeekV3Scale, Causal: true}
			out, lse, err := mla.DecodeFP8(context.Background(), be, q, c, table, lens, opts)
			if err != nil {
				t.Fatal(err)
			}
			wo, wl, err := mla.Decode(context.Background(), be, q, dense, table, lens, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(out, wo) || !slices.Equal(lse, wl) {
				t.Errorf("%s: DecodeFP8 differs from Decode over the dequantized cache", be.Name())
			}
			for _, v := range out {
				if v != v {
					t.Fatalf("%s: NaN in out: a poisoned slot was read", be.Name())
				}
			}
		}
	}
	bad := [][]int32{{6, 1, 8}, {4}}
	if _, _, err := mla.DecodeFP8(context.Background(), nil, q, c, bad, lens, nil); !errors.Is(err, mla.ErrBlockTable) {
		t.Errorf("block id out of range: %v, want ErrBlockTable", err)
	}
}

// TestFP8PagedCache checks the FP8 storage kind of PagedCache: Decode over
// it equals DecodeFP8 over its records bit for bit, a Pager appends into it
// (quantizing with the V3.2 recipe), Row dequantizes, Fill(NaN) poisons,
// NewProblem accepts it and an E4M3 cache without records is ErrDType.
func TestFP8PagedCache(t *testing.T) {
	r := newRand(5)
	pc, err := mla.NewFP8PagedCache(6, 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Fill(float32(math.NaN())); err != nil {
		t.Fatal(err)
	}
	pager, err := mla.NewPager(pc, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{13, 4} {
		for range n {
			if err := pager.Append(i, testutil.Normal(r, mla.HeadDim, 0, 0.5)); err != nil {
				t.Fatal(err)
			}
		}
	}
	q := mla.Query{Data: testutil.Normal(r, 2*mla.HeadDim*4, 0, 1), B: 2, SQ: 1, HQ: 4}
	opts := &mla.Options{NumParts: 2}
	out, lse, err := mla.Decode(context.Background(), nil, q, pc, pager.BlockTable, pager.CacheSeqlens, opts)
	if err != nil {
		t.Fatal(err)
	}
	wo, wl, err := mla.DecodeFP8(context.Background(), nil, q, pc.FP8, pager.BlockTable, pager.CacheSeqlens, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out, wo) || !slices.Equal(lse, wl) {
		t.Error("Decode over the FP8 kind differs from DecodeFP8")
	}
	row, err := pc.Row(int(pager.BlockTable[0][0]), 0, 0, make([]float32, mla.HeadDim))
	if err != nil || row[0] != row[0] {
		t.Errorf("Row of a written slot: %v, %v", row[0], err)
	}
	if _, err := mla.NewProblem(q, pc, pager.BlockTable, pager.CacheSeqlens, nil); err != nil {
		t.Errorf("NewProblem over the FP8 kind: %v", err)
	}
	bad := *pc
	bad.FP8 = nil
	if _, _, err := mla.Decode(context.Background(), nil, q, &bad, pager.BlockTable, pager.CacheSeqlens, nil); !errors.Is(err, mla.ErrDType) {
		t.Errorf("E4M3 without records: %v, want ErrDType", err)
	}
	bad = *pc
	bad.NumKVHeads = 2
	if err := bad.Check(); !errors.Is(err, mla.ErrShape) {
		t.Errorf("two KV heads: %v, want ErrShape", err)
	}
}

// TestFP8RecipeUnknown: a recipe that is none of the constants is refused
// with ErrUnsupported (it used to quantize silently as FP8RecipeV32), and
// nothing is written.
func TestFP8RecipeUnknown(t *testing.T) {
	row := make([]float32, mla.HeadDim)
	for i := range row {
		row[i] = float32(i%17) - 8
	}
	for _, r := range []mla.FP8Recipe{-1, mla.FP8RecipeAmax + 1, 99} {
		dst := make([]byte, mla.FP8BytesPerToken)
		if err := mla.QuantizeFP8Row(dst, row, r); !errors.Is(err, mla.ErrUnsupported) {
			t.Errorf("recipe %d: err %v; want ErrUnsupported", int(r), err)
		}
		if slices.ContainsFunc(dst, func(b byte) bool { return b != 0 }) {
			t.Errorf("recipe %d: wrote into dst", int(r))
		}
		c, err := mla.NewFP8Cache(1, 4)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetRow(0, 0, row, r); !errors.Is(err, mla.ErrUnsupported) {
			t.Errorf("SetRow recipe %d: err %v; want ErrUnsupported", int(r), err)
		}
	}
	for _, r := range []mla.FP8Recipe{mla.FP8RecipeV32, mla.FP8RecipeFlashMLATest, mla.FP8RecipeAmax} {
		if err := mla.QuantizeFP8Row(make([]byte, mla.FP8BytesPerToken), row, r); err != nil {
			t.Errorf("recipe %v: %v", r, err)
		}
	}
}
