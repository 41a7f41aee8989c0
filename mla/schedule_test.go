package mla_test

import (
	"errors"
	"runtime"
	"slices"
	"testing"

	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

func TestNumSMParts(t *testing.T) {
	for _, tc := range []struct{ sms, sq, hq, hkv, want int }{
		{132, 1, 128, 1, 66}, // upstream's H800 DeepSeek decode: 132/1/2
		{132, 2, 128, 1, 33},
		{132, 1, 16, 1, 132},
		{132, 1, 64, 8, 16}, // rows 8 per KV head: one tile, 132/8
		{132, 4, 128, 2, 16},
		{1, 1, 128, 1, 1}, // clamped to ≥ 1
		{0, 1, 1, 1, 1},
	} {
		if got := mla.NumSMParts(tc.sms, tc.sq, tc.hq, tc.hkv); got != tc.want {
			t.Errorf("NumSMParts(%d, %d, %d, %d) = %d, want %d", tc.sms, tc.sq, tc.hq, tc.hkv, got, tc.want)
		}
	}
}

// TestPlanGolden pins get_mla_metadata's greedy rule on cases worked by
// hand. Lengths [100, 0, 700] are [2, 0, 11] blocks of 64, costs 7+5+16 =
// 28, so with 3 parts the payload is max(⌈28/3⌉+5, 10) = 15: part 0 takes
// request 0 (7) and the empty request 1 (5) and cannot start request 2
// (3 − 5 ≤ 0); part 1 takes 10 blocks of request 2; part 2 the last block as
// its split 1.
func TestPlanGolden(t *testing.T) {
	for _, tc := range []struct {
		name      string
		seqlens   []int32
		parts     int
		want      []mla.Part
		numSplits []int32
		pieces    []mla.Piece
	}{
		{
			name: "ragged", seqlens: []int32{100, 0, 700}, parts: 3,
			want:      []mla.Part{{0, 0, 1, 0, 0}, {2, 0, 2, 640, 0}, {2, 640, 2, 700, 1}},
			numSplits: []int32{0, 1, 2, 4},
			pieces:    []mla.Piece{{0, 0, 100, 0}, {1, 0, 0, 1}, {2, 0, 640, 2}, {2, 640, 700, 3}},
		},
		{
			// One part takes everything whole; the payload floor is 10.
			name: "one part", seqlens: []int32{64, 65}, parts: 1,
			want:      []mla.Part{{0, 0, 1, 65, 0}},
			numSplits: []int32{0, 1, 2},
			pieces:    []mla.Piece{{0, 0, 64, 0}, {1, 0, 65, 1}},
		},
		{
			// 1 request of 4096 tokens (64 blocks, cost 69) over 4 parts:
			// payload ⌈69/4⌉+5 = 23, so splits of 18, 18, 18 and 10 blocks.
			name: "long request", seqlens: []int32{4096}, parts: 4,
			want:      []mla.Part{{0, 0, 0, 1152, 0}, {0, 1152, 0, 2304, 1}, {0, 2304, 0, 3456, 2}, {0, 3456, 0, 4096, 3}},
			numSplits: []int32{0, 4},
			pieces:    []mla.Piece{{0, 0, 1152, 0}, {0, 1152, 2304, 1}, {0, 2304, 3456, 2}, {0, 3456, 4096, 3}},
		},
		{
			// More parts than work: the tail parts are empty (begin > end).
			name: "idle parts", seqlens: []int32{10}, parts: 3,
			want:      []mla.Part{{0, 0, 0, 10, 0}, {1, 0, 0, 10, 0}, {1, 0, 0, 10, 0}},
			numSplits: []int32{0, 1},
			pieces:    []mla.Piece{{0, 0, 10, 0}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := mla.Plan(tc.seqlens, tc.parts)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Parts, tc.want) {
				t.Errorf("parts %v, want %v", s.Parts, tc.want)
			}
			if !slices.Equal(s.NumSplits, tc.numSplits) {
				t.Errorf("num_splits %v, want %v", s.NumSplits, tc.numSplits)
			}
			if got := s.Pieces(); !slices.Equal(got, tc.pieces) {
				t.Errorf("pieces %v, want %v", got, tc.pieces)
			}
			if m := s.Metadata(); len(m) != tc.parts || m[0][0] != tc.want[0].BeginReq || m[0][3] != tc.want[0].EndSeqlen {
				t.Errorf("metadata %v does not mirror parts", m)
			}
		})
	}
}

// checkSchedule verifies the schedule's invariants: every token of every
// request in exactly one piece, pieces of a request in split order filling
// its NumSplits slots, part loads within the payload.
func checkSchedule(t *testing.T, seqlens []int32, parts int, s *mla.Schedule) {
	t.Helper()
	if len(s.Parts) != parts || len(s.NumSplits) != len(seqlens)+1 || s.NumSplits[0] != 0 {
		t.Fatalf("shape: %d parts, %d num_splits", len(s.Parts), len(s.NumSplits))
	}
	next := make([]int, len(seqlens))
	slot := make([]int, len(seqlens))
	for i := range slot {
		slot[i] = int(s.NumSplits[i])
	}
	total := 0
	for _, l := range seqlens {
		total += (int(l)+mla.BlockN-1)/mla.BlockN + mla.FixedOverheadBlocks
	}
	payload := max((total+parts-1)/parts+mla.FixedOverheadBlocks, 2*mla.FixedOverheadBlocks)
	load := make([]int, parts)
	pieces := s.Pieces()
	pi := 0
	for p, part := range s.Parts {
		for r := part.BeginReq; r <= part.EndReq; r++ {
			pc := pieces[pi]
			pi++
			if pc.Req != int(r) || pc.Begin != next[r] || pc.Slot != slot[r] || pc.End < pc.Begin {
				t.Fatalf("part %d piece %+v: want request %d from %d into slot %d", p, pc, r, next[r], slot[r])
			}
			if pc.Begin%mla.BlockN != 0 {
				t.Fatalf("piece %+v does not start on a block", pc)
			}
			next[r] = pc.End
			slot[r]++
			load[p] += (pc.End-pc.Begin+mla.BlockN-1)/mla.BlockN + mla.FixedOverheadBlocks
		}
	}
	for r, l := range seqlens {
		if next[r] != int(l) || slot[r] != int(s.NumSplits[r+1]) {
			t.Fatalf("request %d covered to %d of %d, slots to %d of %d", r, next[r], l, slot[r], s.NumSplits[r+1])
		}
	}
	for p, l := range load {
		if l > payload {
			t.Fatalf("part %d load %d > payload %d", p, l, payload)
		}
	}
}

func TestPlanInvariants(t *testing.T) {
	r := newRand(3)
	for it := range 300 {
		b := 1 + r.IntN(40)
		seqlens := make([]int32, b)
		for i := range seqlens {
			if r.IntN(4) > 0 {
				seqlens[i] = int32(r.IntN(5000))
			}
		}
		parts := 1 + r.IntN(200)
		s, err := mla.Plan(seqlens, parts)
		if err != nil {
			t.Fatalf("case %d: %v", it, err)
		}
		checkSchedule(t, seqlens, parts, s)
	}
}

func TestPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		seqlens []int32
		parts   int
		want    error
	}{
		{nil, 1, mla.ErrShape},
		{[]int32{1}, 0, mla.ErrShape},
		{[]int32{1, -1}, 4, mla.ErrSeqlen},
	} {
		if _, err := mla.Plan(tc.seqlens, tc.parts); !errors.Is(err, tc.want) {
			t.Errorf("Plan(%v, %d) = %v, want %v", tc.seqlens, tc.parts, err, tc.want)
		}
	}
}

func FuzzPlan(f *testing.F) {
	f.Add([]byte{100, 0, 200, 7}, uint8(3))
	f.Add([]byte{}, uint8(1))
	f.Add([]byte{255, 255, 255}, uint8(132))
	f.Fuzz(func(t *testing.T, lens []byte, parts uint8) {
		if len(lens) == 0 || parts == 0 {
			if _, err := mla.Plan(nil, int(parts)); err == nil {
				t.Fatal("empty batch accepted")
			}
			return
		}
		seqlens := make([]int32, len(lens))
		for i, v := range lens {
			seqlens[i] = int32(v) * 37
		}
		s, err := mla.Plan(seqlens, int(parts))
		if err != nil {
			t.Fatal(err)
		}
		checkSchedule(t, seqlens, int(parts), s)
	})
}

// TestDefaultNumParts pins what H800SMs's comment says: the Go backends
// choose their own part count from GOMAXPROCS, and only a backend that does
// not (no PartsAdvisor) gets upstream's H800 count.
func TestDefaultNumParts(t *testing.T) {
	cache, err := mla.NewPagedCache(tensor.BF16T, 1, 64, 1, mla.HeadDim)
	if err != nil {
		t.Fatal(err)
	}
	p := &mla.Problem{B: 1, SQ: 1, HQ: 16, Cache: cache}
	prev := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(prev)
	for _, be := range []mla.Backend{mla.Default(), mla.NewRef()} {
		if got, want := mla.DefaultNumParts(be, p), mla.NumSMParts(8, 1, 16, 1); got != want {
			t.Errorf("%s: DefaultNumParts = %d, want NumSMParts(4·GOMAXPROCS) = %d", be.Name(), got, want)
		}
	}
	if got, want := mla.DefaultNumParts(page64Only{mla.Default()}, p), mla.NumSMParts(mla.H800SMs, 1, 16, 1); got != want || got != 132 {
		t.Errorf("backend without PartsAdvisor: DefaultNumParts = %d, want NumSMParts(H800SMs) = %d", got, want)
	}
	for _, be := range []mla.Backend{mla.Default(), page64Only{mla.Default()}} {
		if got := mla.DefaultNumParts(be, nil); got != 1 {
			t.Errorf("%s: DefaultNumParts(nil problem) = %d, want 1", be.Name(), got)
		}
	}
}
