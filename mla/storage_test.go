package mla_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// TestDeviceCache: a paged cache whose storage is not host memory passes
// validation (lengths only) and the Go backends refuse it with an error
// wrapping ErrUnsupported and tensor.ErrNotHost, without a panic and
// without copying it; a short device buffer is still ErrShape.
func TestDeviceCache(t *testing.T) {
	const blocks, page, d = 2, 4, 8
	buf := testutil.NewDeviceBuffer[tensor.BF16](blocks * page * d)
	cache := &mla.PagedCache{DType: tensor.BF16T, NumBlocks: blocks, PageSize: page, NumKVHeads: 1, HeadDim: d, BF16: buf}
	q := mla.Query{Data: make([]float32, d), B: 1, SQ: 1, HQ: 1}
	bt, sl := [][]int32{{1, 0}}, []int32{6}
	opts := &mla.Options{HeadDimV: 4}
	if _, err := mla.NewProblem(q, cache, bt, sl, opts); err != nil {
		t.Fatalf("NewProblem on device storage: %v", err)
	}
	for _, be := range []mla.Backend{mla.NewRef(), mla.Default()} {
		_, _, err := mla.Decode(context.Background(), be, q, cache, bt, sl, opts)
		if !errors.Is(err, tensor.ErrNotHost) || !errors.Is(err, mla.ErrUnsupported) {
			t.Fatalf("%s on a device cache: %v, want ErrUnsupported and ErrNotHost", be.Name(), err)
		}
	}
	if err := cache.SetRow(0, 0, 0, make([]float32, d)); !errors.Is(err, tensor.ErrNotHost) {
		t.Fatalf("SetRow on a device cache: %v", err)
	}
	if err := cache.Fill(0); !errors.Is(err, tensor.ErrNotHost) {
		t.Fatalf("Fill on a device cache: %v", err)
	}
	if buf.Transfers() != 0 {
		t.Fatalf("%d transfers: the host backends copied the device cache", buf.Transfers())
	}
	cache.BF16 = testutil.NewDeviceBuffer[tensor.BF16](blocks*page*d - 1)
	if _, err := mla.NewProblem(q, cache, bt, sl, opts); !errors.Is(err, mla.ErrShape) {
		t.Fatalf("short device cache: %v, want ErrShape", err)
	}
}

// TestNilCacheMethods: every PagedCache method that returns an error reports
// a nil cache as ErrShape, as Check does, instead of dereferencing it.
func TestNilCacheMethods(t *testing.T) {
	var c *mla.PagedCache
	if _, err := c.Host(); !errors.Is(err, mla.ErrShape) {
		t.Errorf("Host: err %v; want ErrShape", err)
	}
	if err := c.Fill(1); !errors.Is(err, mla.ErrShape) {
		t.Errorf("Fill: err %v; want ErrShape", err)
	}
	if err := c.SetRow(0, 0, 0, make([]float32, 576)); !errors.Is(err, mla.ErrShape) {
		t.Errorf("SetRow: err %v; want ErrShape", err)
	}
	if _, err := c.Row(0, 0, 0, make([]float32, 576)); !errors.Is(err, mla.ErrShape) {
		t.Errorf("Row: err %v; want ErrShape", err)
	}
}
