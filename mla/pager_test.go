package mla_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/mla/oracle"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// TestPager grows three sequences token by token through a Pager (page size
// 5, two KV heads), decodes after each step and compares with the oracle on
// the same cache; then frees one sequence, reuses its blocks, and runs the
// cache full.
func TestPager(t *testing.T) {
	const d, hkv, hq, page = 24, 2, 4, 5
	cache, err := mla.NewPagedCache(tensor.BF16T, 9, page, hkv, d)
	if err != nil {
		t.Fatal(err)
	}
	cache.Fill(float32(math.NaN()))
	pg, err := mla.NewPager(cache, 3)
	if err != nil {
		t.Fatal(err)
	}
	r := testutil.RNG(9)
	steps := []int{0, 1, 2, 0, 2, 2, 1, 0, 0, 2, 2, 2, 2, 1, 1, 1, 0, 2, 2, 2}
	for step, req := range steps {
		if err := pg.Append(req, testutil.Normal(r, hkv*d, 0, 1)); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		q := testutil.Normal(r, 3*hq*d, 0, 1)
		in := &oracle.Input{
			Case:       oracle.Case{B: 3, SQ: 1, HQ: hq, HKV: hkv, PageSize: page, HeadDim: d, HeadDimV: 16, Scale: 0.3},
			Q:          mla.Query{Data: q, B: 3, SQ: 1, HQ: hq},
			Cache:      cache,
			BlockTable: pg.BlockTable,
			Seqlens:    pg.CacheSeqlens,
			Opts:       mla.Options{HeadDimV: 16, Scale: 0.3, NumParts: 2},
		}
		out, lse, err := mla.Decode(context.Background(), nil, in.Q, cache, pg.BlockTable, pg.CacheSeqlens, &in.Opts)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		refOut, refLSE, err := oracle.Decode(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := oracle.Check(out, lse, refOut, refLSE); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
	}
	// Lengths 5, 5, 10 use 1+1+2 = 4 of 9 blocks.
	if got := pg.FreeBlocks(); got != 5 || pg.CacheSeqlens[2] != 10 || len(pg.BlockTable[2]) != 2 {
		t.Fatalf("free %d, len %d, pages %d; want 5, 10, 2", got, pg.CacheSeqlens[2], len(pg.BlockTable[2]))
	}
	if err := pg.Reset(2); err != nil || pg.FreeBlocks() != 7 || pg.CacheSeqlens[2] != 0 {
		t.Fatalf("reset: %v, free %d", err, pg.FreeBlocks())
	}
	row := make([]float32, hkv*d)
	n := 0
	for ; ; n++ {
		err := pg.Append(1, row)
		if errors.Is(err, mla.ErrCacheFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != 7*page { // 7 free blocks; request 1's only page was full (5 tokens)
		t.Errorf("appended %d tokens before full, want %d", n, 7*page)
	}
	for _, bad := range []func() error{
		func() error { return pg.Append(3, row) },
		func() error { return pg.Append(0, row[1:]) },
		func() error { return pg.Reset(-1) },
		func() error { _, err := mla.NewPager(cache, 0); return err },
		func() error { _, err := mla.NewPager(cache, 10); return err }, // 9 blocks
		// 2^40 sequences used to die allocating their block tables (a
		// fatal out-of-memory, not an error).
		func() error { _, err := mla.NewPager(cache, 1<<40); return err },
	} {
		if err := bad(); !errors.Is(err, mla.ErrShape) {
			t.Errorf("bad argument: %v, want ErrShape", err)
		}
	}
}
