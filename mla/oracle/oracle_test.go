package oracle

import (
	"errors"
	"math"
	"testing"

	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// TestCheckCatches shows that Check fails on the mistakes it exists to
// catch, starting from an exact (oracle-rounded) answer that passes.
func TestCheckCatches(t *testing.T) {
	in, err := Case{B: 2, SQ: 2, SK: 40, HQ: 4, HKV: 2, Causal: true, ZeroHalf: true, Seed: 3}.Build()
	if err != nil {
		t.Fatal(err)
	}
	refOut, refLSE, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	f32 := func(x []float64) []float32 {
		y := make([]float32, len(x))
		for i, v := range x {
			y[i] = float32(v)
		}
		return y
	}
	if err := Check(f32(refOut), f32(refLSE), refOut, refLSE); err != nil {
		t.Fatalf("exact answer rejected: %v", err)
	}
	// Request 0 has length 0: its lse is +Inf.
	if !math.IsInf(refLSE[0], 1) {
		t.Fatalf("zero-length request: lse %v, want +Inf", refLSE[0])
	}
	nonzero := -1
	for i, v := range refOut {
		if v != 0 {
			nonzero = i
			break
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(out, lse []float32)
	}{
		{"out off by 1e-2", func(out, lse []float32) { out[nonzero] += 1e-2 }},
		{"NaN in out", func(out, lse []float32) { out[nonzero] = float32(math.NaN()) }},
		{"finite lse for an empty row", func(out, lse []float32) { lse[0] = 0 }},
		{"lse off by 1e-3", func(out, lse []float32) { lse[len(lse)-1] += 1e-3 }},
		{"wrong length", func(out, lse []float32) {}},
	} {
		out, lse := f32(refOut), f32(refLSE)
		tc.mutate(out, lse)
		if tc.name == "wrong length" {
			out = out[1:]
		}
		if err := Check(out, lse, refOut, refLSE); err == nil {
			t.Errorf("%s: Check passed", tc.name)
		}
	}
}

// TestBuildPoisonsPadding checks what the grid relies on: every cache slot
// past a sequence's length is NaN and unused block-table entries hold
// UnusedBlockID.
func TestBuildPoisonsPadding(t *testing.T) {
	in, err := Case{B: 3, SQ: 1, SK: 50, HQ: 2, HKV: 1, Varlen: true, PageSize: 16, DType: tensor.F16T, Seed: 4}.Build()
	if err != nil {
		t.Fatal(err)
	}
	live := map[[2]int]bool{}
	for i, l := range in.Seqlens {
		need := (int(l) + 15) / 16
		for k, id := range in.BlockTable[i] {
			if k >= need && id != UnusedBlockID {
				t.Errorf("block_table[%d][%d] = %d, want %d", i, k, id, UnusedBlockID)
			}
		}
		for tk := range int(l) {
			live[[2]int{int(in.BlockTable[i][tk/16]), tk % 16}] = true
		}
	}
	row := make([]float32, in.Cache.HeadDim)
	for b := range in.Cache.NumBlocks {
		for s := range in.Cache.PageSize {
			r, err := in.Cache.Row(b, s, 0, row)
			if err != nil {
				t.Fatal(err)
			}
			if nan := math.IsNaN(float64(r[0])); nan == live[[2]int{b, s}] {
				t.Fatalf("block %d slot %d: NaN %v, live %v", b, s, nan, live[[2]int{b, s}])
			}
		}
	}
	again, _ := Case{B: 3, SQ: 1, SK: 50, HQ: 2, HKV: 1, Varlen: true, PageSize: 16, DType: tensor.F16T, Seed: 4}.Build()
	for i := range in.Q.Data {
		if in.Q.Data[i] != again.Q.Data[i] {
			t.Fatal("Build is not deterministic")
		}
	}
}

func TestOracleRejectsBadInput(t *testing.T) {
	in, err := Case{B: 1, SQ: 1, SK: 10, HQ: 2, HKV: 1, Seed: 5}.Build()
	if err != nil {
		t.Fatal(err)
	}
	in.BlockTable[0][0] = UnusedBlockID
	if _, _, err := Decode(in); !errors.Is(err, mla.ErrBlockTable) {
		t.Fatalf("block id out of range: %v, want ErrBlockTable", err)
	}
}
