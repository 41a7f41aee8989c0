package mla_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
)

// topkOracle is the documented rule written with a full sort: valid (not
// −Inf, not NaN) columns by larger value, then lower column, −1 padding.
func topkOracle(row []float32, k int) []int32 {
	var idx []int32
	for i, v := range row {
		if v == v && !math.IsInf(float64(v), -1) {
			idx = append(idx, int32(i))
		}
	}
	slices.SortStableFunc(idx, func(a, b int32) int {
		va, vb := row[a], row[b]
		switch {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return int(a - b)
	})
	out := make([]int32, k)
	for i := range out {
		out[i] = -1
		if i < len(idx) {
			out[i] = idx[i]
		}
	}
	return out
}

// topkRow draws a row of n logits of one of several kinds: normal values,
// a few distinct values (many ties), ±0 mixes, and −Inf/NaN holes.
func topkRow(r *rand.Rand, n int, kind int) []float32 {
	row := testutil.Normal(r, n, 0, 1)
	for i := range row {
		switch kind {
		case 1:
			row[i] = float32(r.IntN(5)) - 2
		case 2:
			row[i] = []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1))}[r.IntN(5)]
		case 3:
			if r.IntN(3) == 0 {
				row[i] = float32(math.Inf(-1))
			} else if r.IntN(10) == 0 {
				row[i] = float32(math.NaN())
			}
		case 4:
			row[i] = float32(math.Inf(-1)) // nothing valid
		case 5:
			row[i] = math.Float32frombits(0x3F800000 + uint32(r.IntN(4))) // neighbouring floats
		}
	}
	return row
}

func TestTopKIndicesOracle(t *testing.T) {
	r := testutil.RNG(20)
	for _, n := range []int{0, 1, 7, 64, 1000, 4099} {
		for _, k := range []int{1, 2, 64, 2048} {
			for kind := 0; kind < 6; kind++ {
				rows := 3
				logits := make([]float32, 0, rows*n)
				for range rows {
					logits = append(logits, topkRow(r, n, kind)...)
				}
				lengths := []int32{int32(n), int32(n / 2), 0}
				for _, lens := range [][]int32{nil, lengths} {
					dst := make([]int32, rows*k)
					if err := mla.TopKIndices(dst, logits, rows, n, k, lens); err != nil {
						t.Fatal(err)
					}
					for row := range rows {
						m := n
						if lens != nil {
							m = int(lens[row])
						}
						want := topkOracle(logits[row*n:row*n+m], k)
						if got := dst[row*k : (row+1)*k]; !slices.Equal(got, want) {
							t.Fatalf("n=%d k=%d kind=%d row %d lens=%v: got %v…, want %v…", n, k, kind, row, lens != nil, got[:min(k, 8)], want[:min(k, 8)])
						}
					}
				}
			}
		}
	}
}

func TestTopKRowCount(t *testing.T) {
	row := []float32{1, float32(math.Inf(-1)), 3, 3, float32(math.NaN()), 2}
	dst := make([]int32, 5)
	if n := mla.TopKRow(dst, row); n != 4 || !slices.Equal(dst, []int32{2, 3, 5, 0, -1}) {
		t.Fatalf("got %d %v, want 4 [2 3 5 0 -1]", n, dst)
	}
}

func TestTopKIndicesErrors(t *testing.T) {
	for name, f := range map[string]func() error{
		"logits len": func() error { return mla.TopKIndices(make([]int32, 2), make([]float32, 5), 1, 4, 2, nil) },
		"dst len":    func() error { return mla.TopKIndices(make([]int32, 3), make([]float32, 4), 1, 4, 2, nil) },
		"negative":   func() error { return mla.TopKIndices(nil, nil, -1, 4, 2, nil) },
		"lengths":    func() error { return mla.TopKIndices(make([]int32, 2), make([]float32, 4), 1, 4, 2, []int32{5}) },
		"lengths n":  func() error { return mla.TopKIndices(make([]int32, 2), make([]float32, 4), 1, 4, 2, []int32{1, 2}) },
	} {
		var ae *mla.ArgError
		if err := f(); !errors.Is(err, mla.ErrShape) || !errors.As(err, &ae) {
			t.Errorf("%s: got %v, want an ArgError wrapping ErrShape", name, err)
		}
	}
}

func FuzzTopKIndices(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 255, 128, 127, 0x80, 0}, uint8(3), uint8(2))
	f.Add([]byte{0x7f, 0xc0, 0, 0, 0xff, 0x80, 0, 0}, uint8(1), uint8(4))
	f.Fuzz(func(t *testing.T, data []byte, k, rows uint8) {
		n := len(data) / 4
		logits := make([]float32, n)
		for i := range logits {
			logits[i] = math.Float32frombits(uint32(data[4*i]) | uint32(data[4*i+1])<<8 | uint32(data[4*i+2])<<16 | uint32(data[4*i+3])<<24)
		}
		rws := int(rows%4) + 1
		cols := n / rws
		logits = logits[:rws*cols]
		dst := make([]int32, rws*int(k))
		if err := mla.TopKIndices(dst, logits, rws, cols, int(k), nil); err != nil {
			t.Fatal(err)
		}
		for r := range rws {
			if want := topkOracle(logits[r*cols:(r+1)*cols], int(k)); !slices.Equal(dst[r*int(k):(r+1)*int(k)], want) {
				t.Fatalf("row %d: got %v, want %v", r, dst[r*int(k):(r+1)*int(k)], want)
			}
		}
	})
}
