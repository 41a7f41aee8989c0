package mla_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// validArgs returns a small valid problem: b=2, s_q=1, h_q=4, h_kv=2,
// head dim 32 (HeadDimV 16), page size 4, lengths 5 and 0.
func validArgs(t testing.TB) (mla.Query, *mla.PagedCache, [][]int32, []int32, *mla.Options) {
	cache, err := mla.NewPagedCache(tensor.BF16T, 4, 4, 2, 32)
	if err != nil {
		t.Fatal(err)
	}
	q := mla.Query{Data: make([]float32, 2*1*4*32), B: 2, SQ: 1, HQ: 4}
	return q, cache, [][]int32{{2, 0}, {}}, []int32{5, 0}, &mla.Options{HeadDimV: 16}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options)
		want   error
		arg    string
	}{
		{"hq not divisible by hkv", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) {
			q.HQ, q.Data = 3, make([]float32, 2*3*32)
		}, mla.ErrShape, "q"},
		{"head_dim_v > head dim", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) { o.HeadDimV = 33 }, mla.ErrShape, "head_dim_v"},
		{"negative head_dim_v", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) { o.HeadDimV = -1 }, mla.ErrShape, "head_dim_v"},
		{"block id too large", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) { (*bt)[0][1] = 4 }, mla.ErrBlockTable, "block_table"},
		{"negative block id", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) { (*bt)[0][0] = -1 }, mla.ErrBlockTable, "block_table"},
		{"row too short", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) {
			(*bt)[0] = (*bt)[0][:1]
		}, mla.ErrBlockTable, "block_table"},
		{"negative length", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) { (*sl)[1] = -1 }, mla.ErrSeqlen, "cache_seqlens"},
		{"seqlens length", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) { *sl = (*sl)[:1] }, mla.ErrShape, "cache_seqlens"},
		{"block table rows", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) { *bt = (*bt)[:1] }, mla.ErrShape, "block_table"},
		{"q length", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) { q.Data = q.Data[1:] }, mla.ErrShape, "q"},
		{"zero batch", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) { q.B = 0 }, mla.ErrShape, "q"},
		{"cache storage", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) {
			h, _ := tensor.HostSlice(c.BF16)
			c.BF16 = tensor.HostOf(h[1:])
		}, mla.ErrShape, "k_cache"},
		{"cache dtype", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) {
			c.DType = tensor.E4M3T
		}, mla.ErrDType, "k_cache"},
		{"zero page size", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) { c.PageSize = 0 }, mla.ErrShape, "k_cache"},
		{"NaN scale", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) {
			o.Scale = float32(math.NaN())
		}, mla.ErrShape, "softmax_scale"},
		{"zero parts", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) { o.NumParts = -2 }, mla.ErrShape, "num_sm_parts"},
		{"stale schedule", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) {
			o.Schedule, _ = mla.Plan([]int32{5, 1}, 3)
		}, mla.ErrShape, "tile_scheduler_metadata"},
		{"edited schedule", func(q *mla.Query, c *mla.PagedCache, bt *[][]int32, sl *[]int32, o *mla.Options) {
			o.Schedule, _ = mla.Plan([]int32{5, 0}, 3)
			o.Schedule.Parts[0].EndSeqlen = 99
		}, mla.ErrShape, "tile_scheduler_metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, c, bt, sl, o := validArgs(t)
			if _, _, err := mla.Decode(context.Background(), nil, q, c, bt, sl, o); err != nil {
				t.Fatalf("valid args rejected: %v", err)
			}
			tc.mutate(&q, c, &bt, &sl, o)
			_, _, err := mla.Decode(context.Background(), nil, q, c, bt, sl, o)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var ae *mla.ArgError
			if !errors.As(err, &ae) || ae.Arg != tc.arg || !strings.Contains(err.Error(), tc.arg) {
				t.Fatalf("err = %v, want an *ArgError naming %q", err, tc.arg)
			}
		})
	}
}

func TestNewPagedCacheErrors(t *testing.T) {
	if _, err := mla.NewPagedCache(tensor.E4M3T, 1, 64, 1, 576); !errors.Is(err, mla.ErrDType) {
		t.Errorf("fp8 cache: %v, want ErrDType", err)
	}
	if _, err := mla.NewPagedCache(tensor.BF16T, -1, 64, 1, 576); !errors.Is(err, mla.ErrShape) {
		t.Errorf("negative blocks: %v, want ErrShape", err)
	}
	if _, err := mla.NewPagedCache(tensor.BF16T, 1<<40, 64, 1, 576); !errors.Is(err, mla.ErrShape) {
		t.Errorf("huge cache: %v, want ErrShape", err)
	}
	c, _ := mla.NewPagedCache(tensor.F32, 1, 2, 1, 4)
	if err := c.SetRow(0, 2, 0, make([]float32, 4)); !errors.Is(err, mla.ErrShape) {
		t.Errorf("slot out of range: %v, want ErrShape", err)
	}
	if err := c.SetRow(0, 0, 0, make([]float32, 3)); !errors.Is(err, mla.ErrShape) {
		t.Errorf("short row: %v, want ErrShape", err)
	}
}

func TestNewBackend(t *testing.T) {
	for _, n := range []string{"ref", "cpu"} {
		b, err := mla.NewBackend(n, mla.BackendOptions{})
		if err != nil || b.Name() != n {
			t.Errorf("NewBackend(%q) = %v, %v", n, b, err)
		}
	}
	if _, err := mla.NewBackend("cuda-missing", mla.BackendOptions{}); !errors.Is(err, mla.ErrUnknownBackend) {
		t.Errorf("unknown backend: %v", err)
	}
	if n := mla.BackendNames(); len(n) < 2 || n[0] != "cpu" || n[1] != "ref" {
		t.Errorf("BackendNames = %v", n)
	}
	l := mla.Backends()
	if len(l) < 2 || l[0].Name != "cpu" || l[0].Err != nil || l[0].Doc == "" {
		t.Errorf("Backends = %+v", l)
	}
	if mla.Default().Name() != "cpu" || mla.NewRef().Name() != "ref" {
		t.Errorf("NewCPU/NewRef names %q, %q", mla.Default().Name(), mla.NewRef().Name())
	}
}

func TestCancelled(t *testing.T) {
	q, c, bt, sl, o := validArgs(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, be := range []mla.Backend{mla.NewRef(), mla.Default()} {
		if _, _, err := mla.Decode(ctx, be, q, c, bt, sl, o); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v, want context.Canceled", be.Name(), err)
		}
	}
}

// FuzzDecodeValidation feeds arbitrary small shapes, lengths and block
// tables to Decode: it must either return an *ArgError or outputs of the
// right length with finite values (rows with no key: out 0, lse +Inf),
// never panic or read out of range. Cache slots are NaN except the live rows,
// so a read past a length shows up as NaN.
func FuzzDecodeValidation(f *testing.F) {
	f.Add(uint8(2), uint8(1), uint8(4), uint8(2), uint8(4), uint8(4), uint8(8), uint8(16), []byte{5, 0, 2, 0, 1, 3}, false)
	f.Add(uint8(1), uint8(2), uint8(3), uint8(2), uint8(1), uint8(2), uint8(4), uint8(4), []byte{9, 200}, true)
	f.Add(uint8(3), uint8(4), uint8(8), uint8(1), uint8(7), uint8(9), uint8(16), uint8(8), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, true)
	f.Add(uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), []byte{}, false)
	f.Fuzz(func(t *testing.T, b, sq, hq, hkv, page, blocks, d, dv uint8, table []byte, causal bool) {
		b, sq, hq = b%5, sq%5, hq%9
		cache := &mla.PagedCache{DType: tensor.BF16T, NumBlocks: int(blocks % 10), PageSize: int(page % 9), NumKVHeads: int(hkv % 4), HeadDim: int(d % 40)}
		if n := cache.NumBlocks * cache.PageSize * cache.NumKVHeads * cache.HeadDim; n >= 0 {
			v := make([]tensor.BF16, n)
			for i := range v {
				v[i] = tensor.BF16NaNBits
			}
			cache.BF16 = tensor.HostOf(v)
		}
		// table bytes: per request a length, then its block ids.
		seqlens := make([]int32, b)
		bt := make([][]int32, b)
		pos := 0
		nextByte := func() int {
			if pos >= len(table) {
				return 0
			}
			pos++
			return int(table[pos-1])
		}
		for i := range int(b) {
			seqlens[i] = int32(nextByte()) - 8 // some negative
			for range nextByte() % 5 {
				bt[i] = append(bt[i], int32(nextByte())-2)
			}
		}
		// Live rows get finite values so that NaN in the output means a
		// padding read.
		if cache.PageSize > 0 && cache.HeadDim > 0 && cache.NumKVHeads > 0 {
			row := make([]float32, cache.HeadDim)
			for i := range row {
				row[i] = float32(i%7) * 0.1
			}
			for i, l := range seqlens {
				for tk := range max(int(l), 0) {
					k := tk / cache.PageSize
					if k >= len(bt[i]) || bt[i][k] < 0 || int(bt[i][k]) >= cache.NumBlocks {
						break
					}
					for h := range cache.NumKVHeads {
						_ = cache.SetRow(int(bt[i][k]), tk%cache.PageSize, h, row)
					}
				}
			}
		}
		qd := make([]float32, int(b)*int(sq)*int(hq)*max(cache.HeadDim, 0))
		for i := range qd {
			qd[i] = float32(i%5) * 0.2
		}
		for _, be := range []mla.Backend{mla.NewRef(), mla.Default()} {
			out, lse, err := mla.Decode(context.Background(), be, mla.Query{Data: qd, B: int(b), SQ: int(sq), HQ: int(hq)}, cache, bt, seqlens,
				&mla.Options{HeadDimV: int(dv % 40), Causal: causal, NumParts: 3})
			if err != nil {
				var ae *mla.ArgError
				if !errors.As(err, &ae) {
					t.Fatalf("%s: error %v is not an *ArgError", be.Name(), err)
				}
				continue
			}
			for i, v := range out {
				if v != v || math.IsInf(float64(v), 0) {
					t.Fatalf("%s: out[%d] = %v", be.Name(), i, v)
				}
			}
			for i, v := range lse {
				if v != v || math.IsInf(float64(v), -1) {
					t.Fatalf("%s: lse[%d] = %v", be.Name(), i, v)
				}
			}
		}
	})
}
