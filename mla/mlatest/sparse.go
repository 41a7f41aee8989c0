package mlatest

import (
	"context"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/mla/oracle"
)

// SparseDecodeGrid returns the sparse decode cases ported from FlashMLA's
// tests/test_flash_mla_sparse_decoding.py (the V3.2 part, d_qk = 576). The
// short grid (the default) keeps one case per feature, small enough for the
// float64 oracle under -race on two cores: topk 2048 at h_q 64 with page 64,
// h_q 128, s_q > 1, −1 padding (s_k < topk), duplicated indices, an
// all-invalid request with topk_length 0, the sink on and off, and the
// extra cache. The long grid adds upstream's cross product h_q ∈ {64, 128} ×
// b ∈ {4, 74} × s_q ∈ {1, 3} × (s_k, topk, page) ∈ upstream's eight, varlen,
// sink on, and its corner cases.
func SparseDecodeGrid(short bool) []oracle.SparseDecodeCase {
	s := []oracle.SparseDecodeCase{
		{B: 2, SQ: 1, HQ: 64, SK: 512, TopK: 64, PageSize: 2, Sink: true},
		{B: 2, SQ: 3, HQ: 128, SK: 512, TopK: 64, PageSize: 69, Varlen: true, Sink: true, Dup: true},
		{B: 1, SQ: 1, HQ: 64, SK: 2046, TopK: 2048, PageSize: 64, Sink: true},
		{B: 3, SQ: 3, HQ: 64, SK: 650, TopK: 576, PageSize: 53, Varlen: true, Sink: true, AllInvalid: true},
		{B: 2, SQ: 2, HQ: 64, SK: 512, TopK: 128, PageSize: 64, Varlen: true, Sink: true, ExtraTopK: 64},
		{B: 2, SQ: 1, HQ: 128, SK: 100, TopK: 128, PageSize: 64},
		{B: 1, SQ: 2, HQ: 64, SK: 300, TopK: 64, PageSize: 61, AllInvalid: true, ExtraTopK: 64},
	}
	if short {
		return s
	}
	type skp struct{ sk, topk, page int }
	for _, hq := range []int{64, 128} {
		for _, b := range []int{4, 74} {
			for _, sq := range []int{1, 3} {
				for _, x := range []skp{{512, 64, 2}, {512, 64, 64}, {512, 64, 69}, {1024, 576, 2}, {1024, 576, 61}, {2046, 2048, 2}, {2046, 2048, 64}, {2046, 2048, 576}} {
					s = append(s, oracle.SparseDecodeCase{B: b, SQ: sq, HQ: hq, SK: x.sk, TopK: x.topk, PageSize: x.page, Varlen: true, Sink: true, Seed: uint64(len(s))})
				}
			}
		}
		for _, sink := range []bool{false, true} {
			s = append(s,
				oracle.SparseDecodeCase{B: 4, SQ: 3, HQ: hq, SK: 512, TopK: 64, PageSize: 61, Varlen: true, Sink: sink, AllInvalid: true},
				oracle.SparseDecodeCase{B: 4, SQ: 3, HQ: hq, SK: 650, TopK: 576, PageSize: 53, Varlen: true, Sink: sink, AllInvalid: true},
				oracle.SparseDecodeCase{B: 4, SQ: 1, HQ: hq, SK: 1024, TopK: 576, PageSize: 64, Varlen: true, Sink: sink, ExtraTopK: 128},
			)
		}
	}
	return s
}

// SparsePrefillGrid returns the sparse prefill cases ported from FlashMLA's
// tests/test_flash_mla_sparse_prefill.py. The short grid covers d_qk 512
// and 576, h_q 64 and 128, s_kv < topk (invalid fillers), topk 2048, the
// sink, topk_length, an all-invalid case and h_kv = 2 (beyond upstream);
// the long grid adds upstream's d_qk ∈ {512, 576} × h_q ∈ {128, 64} ×
// s_q ∈ {1, 62} × its ten (s_kv, topk) pairs, its feature runs and corner
// cases.
func SparsePrefillGrid(short bool) []oracle.SparsePrefillCase {
	s := []oracle.SparsePrefillCase{
		{SQ: 4, HQ: 64, SKV: 128, TopK: 128},
		{SQ: 3, HQ: 128, SKV: 95, TopK: 128, DQK: 512, Sink: true, TopkLength: true},
		{SQ: 2, HQ: 64, SKV: 1840, TopK: 256, Sink: true},
		{SQ: 2, HQ: 64, SKV: 300, TopK: 512, Sink: true, TopkLength: true, AllInvalid: true},
		{SQ: 1, HQ: 64, SKV: 4096, TopK: 2048},
		{SQ: 2, HQ: 64, SKV: 64, TopK: 2048, Sink: true},
		{SQ: 3, HQ: 8, HKV: 2, SKV: 200, TopK: 128, DQK: 64, Sink: true, TopkLength: true},
	}
	if short {
		return s
	}
	type kt struct{ skv, topk int }
	for _, d := range []int{512, 576} {
		for _, hq := range []int{128, 64} {
			for _, sq := range []int{1, 62} {
				for _, x := range []kt{{128, 128}, {256, 256}, {512, 512}, {592, 128}, {1840, 256}, {1592, 384}, {1521, 512}, {95, 128}, {153, 256}, {114, 384}} {
					s = append(s, oracle.SparsePrefillCase{SQ: sq, HQ: hq, SKV: x.skv, TopK: x.topk, DQK: d, Seed: uint64(len(s))})
				}
			}
			s = append(s,
				oracle.SparsePrefillCase{SQ: 62, HQ: hq, SKV: 592, TopK: 128, DQK: d, Sink: true, TopkLength: true},
				oracle.SparsePrefillCase{SQ: 1, HQ: hq, SKV: 128, TopK: 128, DQK: d, Sink: true, TopkLength: true, AllInvalid: true},
				oracle.SparsePrefillCase{SQ: 1, HQ: hq, SKV: 256, TopK: 256, DQK: d, Sink: true, TopkLength: true, AllInvalid: true},
				oracle.SparsePrefillCase{SQ: 4, HQ: hq, SKV: 4096, TopK: 2048, DQK: d, Sink: true, TopkLength: true},
				oracle.SparsePrefillCase{SQ: 8, HQ: hq, SKV: 32, TopK: 2048, DQK: d},
			)
		}
	}
	return s
}

// RunSparse holds be to the float64 oracle on the sparse grids with
// upstream's tolerances: subtests decode/<case> and prefill/<case>. The
// short grids run unless FIREFLYER_LONG=1 (testutil.Long) asks for the long
// ones and neither o.Short nor -short is set; Skip and Every work as in
// Run.
func RunSparse(t *testing.T, be mla.SparseBackend, o Options) {
	short := o.Short || testing.Short() || !testutil.Long()
	skip := o.skipper()
	ctx := context.Background()
	t.Run("decode", func(t *testing.T) {
		eachCase(t, o, skip, SparseDecodeGrid(short), func(t *testing.T, c oracle.SparseDecodeCase) {
			in, err := c.Build()
			if err != nil {
				t.Fatal(err)
			}
			refOut, refLSE, err := oracle.SparseDecode(in)
			if err != nil {
				t.Fatal(err)
			}
			out, lse, err := mla.SparseDecode(ctx, be, in.Q, in.Cache, in.Indices, in.TopK, &in.Opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := oracle.CheckSparseDecode(out, lse, refOut, refLSE); err != nil {
				t.Fatalf("%s: %v", be.Name(), err)
			}
		})
	})
	t.Run("prefill", func(t *testing.T) {
		eachCase(t, o, skip, SparsePrefillGrid(short), func(t *testing.T, c oracle.SparsePrefillCase) {
			in, err := c.Build()
			if err != nil {
				t.Fatal(err)
			}
			refOut, refMax, refLSE, err := oracle.SparsePrefill(in)
			if err != nil {
				t.Fatal(err)
			}
			out, mx, lse, err := mla.SparsePrefill(ctx, be, in.In, &in.Opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := oracle.CheckSparsePrefill(out, mx, lse, refOut, refMax, refLSE); err != nil {
				t.Fatalf("%s: %v", be.Name(), err)
			}
		})
	})
}
