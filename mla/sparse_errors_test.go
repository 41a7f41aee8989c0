package mla_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// sparseDecodeArgs returns a small valid sparse decode: b=2, s_q=2, h_q=2,
// topk 3 over a 2-block cache of page 4 (8 token indices), an extra cache of
// one block.
func sparseDecodeArgs(t testing.TB) (mla.Query, *mla.PagedCache, []int32, int, *mla.SparseDecodeOptions) {
	c, err := mla.NewFP8PagedCache(2, 4)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := mla.NewFP8PagedCache(1, 3)
	if err != nil {
		t.Fatal(err)
	}
	q := mla.Query{Data: make([]float32, 2*2*2*mla.HeadDim), B: 2, SQ: 2, HQ: 2}
	idx := []int32{0, 7, -1, 3, 3, 1, -1, -1, -1, 5, 6, 2}
	return q, c, idx, 3, &mla.SparseDecodeOptions{
		TopkLength: []int32{3, 2}, AttnSink: []float32{0, 1},
		ExtraCache: ec, ExtraIndices: []int32{0, 1, 2, -1}, ExtraTopK: 1, ExtraTopkLength: []int32{1, 1},
	}
}

func TestSparseDecodeBadInput(t *testing.T) {
	type args struct {
		q    *mla.Query
		c    **mla.PagedCache
		idx  *[]int32
		topk *int
		o    *mla.SparseDecodeOptions
	}
	for _, tc := range []struct {
		name   string
		mutate func(a args)
		want   error
		arg    string
	}{
		{"index past the cache", func(a args) { (*a.idx)[1] = 8 }, mla.ErrIndex, "indices"},
		{"index −2", func(a args) { (*a.idx)[0] = -2 }, mla.ErrIndex, "indices"},
		{"index MinInt32", func(a args) { (*a.idx)[3] = math.MinInt32 }, mla.ErrIndex, "indices"},
		{"extra index past the extra cache", func(a args) { a.o.ExtraIndices[2] = 3 }, mla.ErrIndex, "extra_indices_in_kvcache"},
		{"topk_length > topk", func(a args) { a.o.TopkLength[1] = 4 }, mla.ErrShape, "topk_length"},
		{"negative topk_length", func(a args) { a.o.TopkLength[0] = -1 }, mla.ErrShape, "topk_length"},
		{"topk_length length", func(a args) { a.o.TopkLength = a.o.TopkLength[:1] }, mla.ErrShape, "topk_length"},
		{"extra_topk_length > extra topk", func(a args) { a.o.ExtraTopkLength[0] = 2 }, mla.ErrShape, "extra_topk_length"},
		{"indices length", func(a args) { *a.idx = (*a.idx)[1:] }, mla.ErrShape, "indices"},
		{"topk mismatch", func(a args) { *a.topk = 4 }, mla.ErrShape, "indices"},
		{"negative topk", func(a args) { *a.topk = -1 }, mla.ErrShape, "indices"},
		{"q length", func(a args) { a.q.Data = a.q.Data[1:] }, mla.ErrShape, "q"},
		{"zero h_q", func(a args) { a.q.HQ = 0 }, mla.ErrShape, "q"},
		{"huge batch", func(a args) { a.q.B = math.MaxInt / 2 }, mla.ErrShape, "q"},
		{"sink length", func(a args) { a.o.AttnSink = []float32{0} }, mla.ErrShape, "attn_sink"},
		{"NaN sink", func(a args) { a.o.AttnSink[1] = float32(math.NaN()) }, mla.ErrShape, "attn_sink"},
		{"head_dim_v", func(a args) { a.o.HeadDimV = 576 }, mla.ErrShape, "head_dim_v"},
		{"Inf scale", func(a args) { a.o.Scale = float32(math.Inf(1)) }, mla.ErrShape, "softmax_scale"},
		{"nil cache", func(a args) { *a.c = nil }, mla.ErrShape, "k_cache"},
		{"short cache", func(a args) { (*a.c).FP8.Data = (*a.c).FP8.Data.(tensor.Host[byte])[:100] }, mla.ErrShape, "k_cache"},
		{"bad extra cache", func(a args) { a.o.ExtraCache.FP8.PageSize = 0 }, mla.ErrShape, "extra_k_cache"},
		{"BF16 cache", func(a args) {
			*a.c, _ = mla.NewPagedCache(tensor.BF16T, 2, 4, 1, mla.HeadDim)
		}, mla.ErrDType, "k_cache"},
		{"F32 extra cache", func(a args) {
			a.o.ExtraCache, _ = mla.NewPagedCache(tensor.F32, 1, 3, 1, mla.HeadDim)
		}, mla.ErrDType, "extra_k_cache"},
		{"E4M3 without records", func(a args) { (*a.c).FP8 = nil }, mla.ErrDType, "k_cache"},
		{"extra indices without a cache", func(a args) { a.o.ExtraCache = nil }, mla.ErrShape, "extra_k_cache"},
		{"extra indices length", func(a args) { a.o.ExtraIndices = a.o.ExtraIndices[:3] }, mla.ErrShape, "extra_indices_in_kvcache"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, c, idx, topk, o := sparseDecodeArgs(t)
			tc.mutate(args{&q, &c, &idx, &topk, o})
			for _, name := range mla.SparseBackendNames() {
				_, _, err := mla.SparseDecode(context.Background(), sparseBackend(t, name), q, c, idx, topk, o)
				var ae *mla.ArgError
				if !errors.Is(err, tc.want) || !errors.As(err, &ae) || ae.Arg != tc.arg {
					t.Fatalf("%s: err = %v, want %v naming %q", name, err, tc.want, tc.arg)
				}
			}
		})
	}
	q, c, idx, topk, o := sparseDecodeArgs(t)
	if _, _, err := mla.SparseDecode(context.Background(), nil, q, c, idx, topk, o); err != nil {
		t.Fatalf("valid args: %v", err)
	}
	// Entries past topk_length are never read, so they are not checked.
	idx[11] = 1 << 30
	if _, _, err := mla.SparseDecode(context.Background(), nil, q, c, idx, topk, o); err != nil {
		t.Fatalf("garbage past topk_length: %v", err)
	}
}

func sparsePrefillArgs() (mla.SparsePrefillInput, *mla.SparsePrefillOptions) {
	return mla.SparsePrefillInput{Q: make([]float32, 2*4*16), SQ: 2, HQ: 4, KV: make([]float32, 5*2*16), SKV: 5, HKV: 2, DQK: 16,
			Indices: []int32{0, 4, 9, -1, 1, 1, 2, 3, math.MaxInt32, 0, 1, 2, 3, 4}[:2*2*3], TopK: 3},
		&mla.SparsePrefillOptions{HeadDimV: 8, AttnSink: make([]float32, 4), TopkLength: []int32{3, 1}}
}

func TestSparsePrefillBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(in *mla.SparsePrefillInput, o *mla.SparsePrefillOptions)
		arg    string
	}{
		{"q length", func(in *mla.SparsePrefillInput, o *mla.SparsePrefillOptions) { in.Q = in.Q[1:] }, "q"},
		{"kv length", func(in *mla.SparsePrefillInput, o *mla.SparsePrefillOptions) { in.KV = in.KV[1:] }, "kv"},
		{"h_q not a multiple of h_kv", func(in *mla.SparsePrefillInput, o *mla.SparsePrefillOptions) {
			in.HQ, in.Q, o.AttnSink = 3, make([]float32, 2*3*16), nil
		}, "q"},
		{"zero h_kv", func(in *mla.SparsePrefillInput, o *mla.SparsePrefillOptions) { in.HKV = 0 }, "kv"},
		{"zero d_qk", func(in *mla.SparsePrefillInput, o *mla.SparsePrefillOptions) { in.DQK = 0 }, "q"},
		{"indices length", func(in *mla.SparsePrefillInput, o *mla.SparsePrefillOptions) { in.Indices = in.Indices[1:] }, "indices"},
		{"negative topk", func(in *mla.SparsePrefillInput, o *mla.SparsePrefillOptions) { in.TopK = -3 }, "indices"},
		{"d_v > d_qk", func(in *mla.SparsePrefillInput, o *mla.SparsePrefillOptions) { o.HeadDimV = 17 }, "d_v"},
		{"topk_length > topk", func(in *mla.SparsePrefillInput, o *mla.SparsePrefillOptions) { o.TopkLength[0] = 4 }, "topk_length"},
		{"topk_length length", func(in *mla.SparsePrefillInput, o *mla.SparsePrefillOptions) { o.TopkLength = []int32{1} }, "topk_length"},
		{"sink length", func(in *mla.SparsePrefillInput, o *mla.SparsePrefillOptions) { o.AttnSink = o.AttnSink[:3] }, "attn_sink"},
		{"NaN scale", func(in *mla.SparsePrefillInput, o *mla.SparsePrefillOptions) { o.Scale = float32(math.NaN()) }, "softmax_scale"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, o := sparsePrefillArgs()
			tc.mutate(&in, o)
			for _, name := range mla.SparseBackendNames() {
				_, _, _, err := mla.SparsePrefill(context.Background(), sparseBackend(t, name), in, o)
				var ae *mla.ArgError
				if !errors.Is(err, mla.ErrShape) || !errors.As(err, &ae) || ae.Arg != tc.arg {
					t.Fatalf("%s: err = %v, want ErrShape naming %q", name, err, tc.arg)
				}
			}
		})
	}
	in, o := sparsePrefillArgs()
	if _, _, _, err := mla.SparsePrefill(context.Background(), nil, in, o); err != nil {
		t.Fatalf("valid args (out-of-range entries are invalid keys, not errors): %v", err)
	}
}

// FuzzSparseArgs feeds arbitrary shapes, lengths and index values to both
// sparse front functions: every call returns an *ArgError or results of the
// promised lengths without NaN, never panics or reads out of bounds.
func FuzzSparseArgs(f *testing.F) {
	f.Add(uint8(2), uint8(1), uint8(2), uint8(3), uint8(4), uint8(2), int32(5), int32(-1), int32(3), uint8(3))
	f.Add(uint8(1), uint8(3), uint8(1), uint8(0), uint8(1), uint8(1), int32(-2), int32(7), int32(0), uint8(0))
	f.Add(uint8(3), uint8(2), uint8(4), uint8(9), uint8(3), uint8(5), int32(1<<30), int32(2), int32(-1), uint8(9))
	f.Fuzz(func(t *testing.T, b, sq, hq, topk, page, blocks uint8, i0, i1, i2 int32, tl uint8) {
		B, SQ, HQ, K := int(b%4), int(sq%4), int(hq%5), int(topk%10)
		ctx := context.Background()
		fc := &mla.FP8Cache{NumBlocks: int(blocks % 4), PageSize: int(page % 6)}
		if fc.PageSize > 0 {
			fc.Data = tensor.Host[byte](make([]byte, fc.NumBlocks*fc.PageSize*mla.FP8BytesPerToken))
		}
		c := &mla.PagedCache{DType: tensor.E4M3T, NumBlocks: fc.NumBlocks, PageSize: fc.PageSize, NumKVHeads: 1, HeadDim: mla.HeadDim, FP8: fc}
		idx := make([]int32, B*SQ*K)
		for i := range idx {
			idx[i] = []int32{i0, i1, i2}[i%3] + int32(i/3)
		}
		tls := make([]int32, B)
		for i := range tls {
			tls[i] = int32(tl%12) - 1
		}
		q := mla.Query{Data: make([]float32, B*SQ*HQ*mla.HeadDim), B: B, SQ: SQ, HQ: HQ}
		for _, name := range mla.SparseBackendNames() {
			be := sparseBackend(t, name)
			out, lse, err := mla.SparseDecode(ctx, be, q, c, idx, K, &mla.SparseDecodeOptions{TopkLength: tls})
			var ae *mla.ArgError
			if err != nil && !errors.As(err, &ae) {
				t.Fatalf("%s decode: %v is not an *ArgError", name, err)
			}
			if err == nil && (len(out) != B*SQ*HQ*mla.HeadDimV || len(lse) != B*HQ*SQ) {
				t.Fatalf("%s decode: lengths %d, %d", name, len(out), len(lse))
			}
			for _, v := range out {
				if v != v {
					t.Fatalf("%s decode: NaN", name)
				}
			}
			d := int(page%9) + 1
			in := mla.SparsePrefillInput{Q: make([]float32, SQ*HQ*d), SQ: SQ, HQ: HQ, KV: make([]float32, int(blocks%7)*d), SKV: int(blocks % 7), HKV: 1, DQK: d,
				Indices: idx[:min(len(idx), SQ*K)], TopK: K}
			pout, mx, plse, err := mla.SparsePrefill(ctx, be, in, &mla.SparsePrefillOptions{TopkLength: tls[:min(len(tls), SQ)]})
			if err != nil && !errors.As(err, &ae) {
				t.Fatalf("%s prefill: %v is not an *ArgError", name, err)
			}
			if err == nil && (len(pout) != SQ*HQ*min(d, mla.HeadDimV) || len(mx) != SQ*HQ || len(plse) != SQ*HQ) {
				t.Fatalf("%s prefill: lengths %d, %d, %d", name, len(pout), len(mx), len(plse))
			}
		}
	})
}

// TestSparseCancelled checks that a cancelled context stops both front
// functions on both backends with ctx.Err().
func TestSparseCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q, c, idx, topk, o := sparseDecodeArgs(t)
	in, po := sparsePrefillArgs()
	for _, name := range mla.SparseBackendNames() {
		be := sparseBackend(t, name)
		if _, _, err := mla.SparseDecode(ctx, be, q, c, idx, topk, o); !errors.Is(err, context.Canceled) {
			t.Errorf("%s decode: %v, want context.Canceled", name, err)
		}
		if _, _, _, err := mla.SparsePrefill(ctx, be, in, po); !errors.Is(err, context.Canceled) {
			t.Errorf("%s prefill: %v, want context.Canceled", name, err)
		}
	}
	if _, err := mla.NewSparseBackend("gpu", mla.BackendOptions{}); !errors.Is(err, mla.ErrUnknownBackend) {
		t.Errorf("unknown backend: %v", err)
	}
}

// TestSparseDeviceStorage checks that a cache whose bytes live off the host
// validates (only its length is needed) and that the Go backends refuse it
// with ErrUnsupported and tensor.ErrNotHost, naming the cache.
func TestSparseDeviceStorage(t *testing.T) {
	q, c, idx, topk, o := sparseDecodeArgs(t)
	c.FP8.Data = testutil.NewDeviceBuffer[byte](tensor.StorageLen(c.FP8.Data))
	if _, err := mla.NewSparseDecodeProblem(q, c, idx, topk, o); err != nil {
		t.Fatalf("device cache does not validate: %v", err)
	}
	for _, name := range mla.SparseBackendNames() {
		_, _, err := mla.SparseDecode(context.Background(), sparseBackend(t, name), q, c, idx, topk, o)
		var ae *mla.ArgError
		if !errors.Is(err, mla.ErrUnsupported) || !errors.Is(err, tensor.ErrNotHost) || !errors.As(err, &ae) || ae.Arg != "k_cache" {
			t.Errorf("%s: %v, want ErrUnsupported and ErrNotHost naming k_cache", name, err)
		}
	}
	if err := c.Fill(float32(math.NaN())); !errors.Is(err, tensor.ErrNotHost) {
		t.Errorf("Poison: %v, want ErrNotHost", err)
	}
	if _, _, err := mla.DecodeFP8(context.Background(), nil, mla.Query{Data: make([]float32, mla.HeadDim), B: 1, SQ: 1, HQ: 1}, c.FP8, [][]int32{{0}}, []int32{1}, nil); !errors.Is(err, tensor.ErrNotHost) {
		t.Errorf("DecodeFP8: %v, want ErrNotHost", err)
	}
}
