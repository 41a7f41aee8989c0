package mla_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/mla/mlatest"
	"github.com/fireflyer-go/fireflyer/mla/oracle"
)

func sparseBackend(t testing.TB, name string) mla.SparseBackend {
	t.Helper()
	be, err := mla.NewSparseBackend(name, mla.BackendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func TestSparseConformanceRef(t *testing.T) {
	mlatest.RunSparse(t, sparseBackend(t, "ref"), mlatest.Options{})
}

func TestSparseConformanceCPU(t *testing.T) {
	mlatest.RunSparse(t, sparseBackend(t, "cpu"), mlatest.Options{})
}

// TestSparseConformanceCPULevels runs every other short-grid case on the cpu
// sparse backend with its kernels forced down to AVX2 and to pure Go.
func TestSparseConformanceCPULevels(t *testing.T) {
	for _, l := range []string{"avx2", "go"} {
		t.Run(l, func(t *testing.T) {
			be, err := mla.NewSparseBackend("cpu", mla.BackendOptions{Kernels: l})
			if errors.Is(err, mla.ErrKernels) {
				t.Skipf("CPU or build lacks %s: %v", l, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			mlatest.RunSparse(t, be, mlatest.Options{Short: true, Every: 2})
		})
	}
	if _, err := mla.NewSparseBackend("cpu", mla.BackendOptions{Kernels: "sse"}); !errors.Is(err, mla.ErrKernels) {
		t.Errorf("unknown kernel set: %v, want ErrKernels", err)
	}
}

// TestSparseSemantics pins upstream's conventions with exact small cases on
// both backends: the sink enters the denominator only (sink = lse halves
// out, +Inf zeroes it, lse excludes it), duplicates count once per
// occurrence, a row with no valid index gets out = 0 and lse = +Inf
// (max_logits −Inf in prefill), −1 and entries past topk_length are never
// read.
func TestSparseSemantics(t *testing.T) {
	ctx := context.Background()
	c, err := mla.NewFP8PagedCache(2, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Fill(float32(math.NaN())); err != nil {
		t.Fatal(err)
	}
	key := make([]float32, mla.HeadDim)
	key[0], key[1] = 1, 0.5
	if err := c.SetRow(1, 2, 0, key); err != nil { // token index 6
		t.Fatal(err)
	}
	const scale = 0.25
	q := make([]float32, 4*mla.HeadDim) // b = 4 requests, s_q = 1, h_q = 1
	for b := range 4 {
		q[b*mla.HeadDim] = 2
	}
	z := float32(scale * 2) // scale·⟨q, k⟩
	idx := []int32{
		6, -1, 3, // request 0: one key (3 is past topk_length 1: never read)
		6, 6, -1, // request 1: the key twice
		-1, -1, -1, // request 2: nothing valid
		6, -1, -1, // request 3: one key, sink +Inf
	}
	for _, name := range mla.SparseBackendNames() {
		be := sparseBackend(t, name)
		for _, withSink := range []bool{false, true} {
			opts := &mla.SparseDecodeOptions{Scale: scale, TopkLength: []int32{1, 3, 3}}
			if withSink {
				opts.AttnSink = []float32{z}
			}
			// The sink is per head, one head here: run request 3 with +Inf apart.
			out, lse, err := mla.SparseDecode(ctx, be, mla.Query{Data: q[:3*mla.HeadDim], B: 3, SQ: 1, HQ: 1}, c, idx[:9], 3, opts)
			if err != nil {
				t.Fatal(err)
			}
			half := float32(1)
			if withSink {
				half = 0.5 // exp(lse)/(exp(lse)+exp(sink)) with sink = lse
			}
			near := func(what string, got, want float32) {
				t.Helper()
				if math.Abs(float64(got-want)) > 1e-6 {
					t.Errorf("%s sink=%v %s = %v, want %v", name, withSink, what, got, want)
				}
			}
			near("out[0][0]", out[0], half)
			near("out[0][1]", out[1], 0.5*half)
			near("lse[0]", lse[0], z)
			wantDup := float32(1)
			if withSink {
				wantDup = float32(2 / (2 + 1.0)) // L = 2e^z, sink e^z
			}
			near("out[1][0]", out[mla.HeadDimV], wantDup)
			near("lse[1]", lse[1], z+float32(math.Ln2))
			if !math.IsInf(float64(lse[2]), 1) || out[2*mla.HeadDimV] != 0 {
				t.Errorf("%s: empty row out %v lse %v, want 0 and +Inf", name, out[2*mla.HeadDimV], lse[2])
			}
			for _, v := range out {
				if v != v {
					t.Fatalf("%s: NaN in out: a poisoned slot was read", name)
				}
			}
		}
		out, lse, err := mla.SparseDecode(ctx, be, mla.Query{Data: q[:mla.HeadDim], B: 1, SQ: 1, HQ: 1}, c, idx[9:], 3,
			&mla.SparseDecodeOptions{Scale: scale, AttnSink: []float32{float32(math.Inf(1))}})
		if err != nil {
			t.Fatal(err)
		}
		if out[0] != 0 || math.Abs(float64(lse[0]-z)) > 1e-6 {
			t.Errorf("%s: sink +Inf: out %v lse %v, want 0 and %v", name, out[0], lse[0], z)
		}

		// Prefill: two KV rows, the second listed twice; invalid fillers skipped.
		kv := make([]float32, 3*8)
		kv[0], kv[8], kv[16] = 1, 2, float32(math.NaN()) // row 2 must never be read
		in := mla.SparsePrefillInput{Q: []float32{1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, SQ: 2, HQ: 1, KV: kv, SKV: 3, HKV: 1, DQK: 8,
			Indices: []int32{0, 1, 1, math.MaxInt32, -5, 3, 2, 2}, TopK: 4}
		pout, mx, plse, err := mla.SparsePrefill(ctx, be, in, &mla.SparsePrefillOptions{Scale: 1, HeadDimV: 4, TopkLength: []int32{4, 2}})
		if err != nil {
			t.Fatal(err)
		}
		// Row 0: logits 1, 2, 2 → max 2, lse ln(e + 2e²), out = (e·1 + 2e²·2)/(e + 2e²).
		e1, e2 := math.E, math.E*math.E
		if math.Abs(float64(mx[0])-2) > 1e-6 || math.Abs(float64(plse[0])-math.Log(e1+2*e2)) > 1e-6 ||
			math.Abs(float64(pout[0])-(e1+4*e2)/(e1+2*e2)) > 1e-5 {
			t.Errorf("%s prefill row 0: out %v max %v lse %v", name, pout[0], mx[0], plse[0])
		}
		if !math.IsInf(float64(mx[1]), -1) || !math.IsInf(float64(plse[1]), 1) || pout[4] != 0 {
			t.Errorf("%s prefill row 1 (no valid entry): out %v max %v lse %v, want 0, −Inf, +Inf", name, pout[4], mx[1], plse[1])
		}
	}
}

// TestSparseCPUDeterministic checks that the cpu backend's bits do not
// depend on GOMAXPROCS (a chunked problem: few rows, wide index lists).
func TestSparseCPUDeterministic(t *testing.T) {
	in, err := oracle.SparseDecodeCase{B: 2, SQ: 1, HQ: 64, SK: 1500, TopK: 1536, Sink: true, ExtraTopK: 64}.Build()
	if err != nil {
		t.Fatal(err)
	}
	pin, err := oracle.SparsePrefillCase{SQ: 2, HQ: 64, SKV: 1600, TopK: 1536}.Build()
	if err != nil {
		t.Fatal(err)
	}
	be := sparseBackend(t, "cpu")
	run := func(procs int) ([]float32, []float32, []float32) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		out, lse, err := mla.SparseDecode(context.Background(), be, in.Q, in.Cache, in.Indices, in.TopK, &in.Opts)
		if err != nil {
			t.Fatal(err)
		}
		pout, _, _, err := mla.SparsePrefill(context.Background(), be, pin.In, &pin.Opts)
		if err != nil {
			t.Fatal(err)
		}
		return out, lse, pout
	}
	o1, l1, p1 := run(1)
	o4, l4, p4 := run(4)
	if !slices.Equal(o1, o4) || !slices.Equal(l1, l4) || !slices.Equal(p1, p4) {
		t.Fatal("results differ between GOMAXPROCS 1 and 4")
	}
}
