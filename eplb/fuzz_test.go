package eplb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// isSentinel reports whether err wraps one of the package's sentinels.
func isSentinel(err error) bool {
	for _, s := range []error{ErrShape, ErrLoad, ErrConfig, ErrInfeasible, ErrPlan, ErrSyntax} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// fuzzWeights decodes raw into layers of float32 loads. Even modes read small
// integers (frequent ties), odd modes raw float32 bits (NaN, Inf, negative);
// ragged cuts the last layer short.
func fuzzWeights(raw []byte, layers uint8, mode uint8, ragged bool) [][]float32 {
	L := int(layers%4) + 1
	var vals []float32
	if mode%2 == 0 {
		for _, b := range raw {
			vals = append(vals, float32(b%16))
		}
	} else {
		for len(raw) >= 4 {
			vals = append(vals, math.Float32frombits(binary.LittleEndian.Uint32(raw)))
			raw = raw[4:]
		}
	}
	E := len(vals) / L
	w := make([][]float32, L)
	for l := range w {
		w[l] = vals[l*E : (l+1)*E]
	}
	if ragged && E > 0 {
		w[L-1] = w[L-1][:E-1]
	}
	return w
}

func FuzzRebalance(f *testing.F) {
	readme := make([]byte, 0, 24)
	for _, row := range readmeWeight {
		for _, x := range row {
			readme = append(readme, byte(x))
		}
	}
	f.Add(readme, uint8(1), uint8(0), false, uint8(16), uint8(4), uint8(2), uint8(8), uint8(0), false)
	f.Add(readme, uint8(1), uint8(0), false, uint8(16), uint8(4), uint8(2), uint8(8), uint8(2), true)
	f.Add(readme, uint8(0), uint8(0), true, uint8(12), uint8(3), uint8(2), uint8(4), uint8(0), false)
	f.Add([]byte{0, 0, 0xc0, 0x7f, 0, 0, 0x80, 0xbf}, uint8(0), uint8(1), false, uint8(2), uint8(1), uint8(1), uint8(1), uint8(1), false)
	f.Add([]byte{}, uint8(0), uint8(0), false, uint8(1), uint8(1), uint8(1), uint8(1), uint8(0), false)
	f.Fuzz(func(t *testing.T, raw []byte, layers, mode uint8, ragged bool, p, g, n, r, pol uint8, noDup bool) {
		w := fuzzWeights(raw, layers, mode, ragged)
		cfg := Config{Replicas: int(p), Groups: int(g), Nodes: int(n), GPUs: int(r), Policy: Policy(pol % 4), NoDuplicates: noDup}
		plan, err := Rebalance(w, cfg)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		if err := ValidatePlan(plan); err != nil {
			t.Fatalf("invalid plan for %+v: %v", cfg, err)
		}
		m, err := Evaluate(w, plan, cfg)
		if err != nil {
			t.Fatalf("Evaluate: %v", err)
		}
		if noDup && m.Duplicates != 0 {
			t.Fatalf("%d duplicates with NoDuplicates", m.Duplicates)
		}
		cfg.Previous = plan
		again, err := Rebalance(w, cfg)
		if err != nil {
			t.Fatalf("re-plan against itself: %v", err)
		}
		if n := SlotsChanged(again, plan); n != 0 {
			t.Fatalf("re-plan against itself moved %d slots", n)
		}
	})
}

func FuzzParseWeights(f *testing.F) {
	for _, s := range []string{
		"[[90,132,40,61,104,165,39,4,73,56,183,86],[20,107,104,64,19,197,187,157,172,86,16,27]]",
		"90,132,40,61\n20,107,104,64\n",
		"# loads\n1, 2.5, 3e2\n\n4,5,6\n",
		"[[1,2],[3]]", "[]", "[[]]", "", "1,,2", "NaN,1", "1,-2", "1e39,1", "[[1e39]]",
		"[[1,2]] [[3]]", "[[1, null]]", "[null]", "  [[0.1, 0x1p-3]]", "1\r\n2\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := ParseWeights(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrLoad) && !errors.Is(err, ErrShape) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		if err := ValidateWeights(w); err != nil {
			t.Fatalf("parsed weights invalid: %v", err)
		}
		// Round trip through CSV with the shortest float32 formatting.
		var b strings.Builder
		for _, row := range w {
			for j, x := range row {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.FormatFloat(float64(x), 'g', -1, 32))
			}
			b.WriteByte('\n')
		}
		back, err := ParseWeights(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("re-parse %q: %v", b.String(), err)
		}
		if d := cmp.Diff(w, back); d != "" {
			t.Fatalf("CSV round trip (-first +second):\n%s", d)
		}
	})
}

func FuzzReadPlan(f *testing.F) {
	f.Add([]byte(`{"phy2log":[[0,0,3,0,1,2]],"log2phy":[[[0,3,1],[4,-1,-1],[5,-1,-1],[2,-1,-1]]],"logcnt":[[3,1,1,1]],"phyrank":[[0,2,0,1,0,0]]}`))
	f.Add([]byte(`{"phy2log":[[0]],"log2phy":[[[0]]],"logcnt":[[1]],"phyrank":[[0]],"metrics":{}}`))
	f.Add([]byte(`{"phy2log":[[1]],"log2phy":[[[0]]],"logcnt":[[1]],"phyrank":[[0]]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ReadPlan(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrPlan) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		if err := ValidatePlan(p); err != nil {
			t.Fatalf("ReadPlan accepted an invalid plan: %v", err)
		}
	})
}

func TestParseWeights(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     [][]float32
		err      error
		msg      string
	}{
		{"json", "[[1,2.5],[3,4]]", [][]float32{{1, 2.5}, {3, 4}}, nil, ""},
		{"csv with comments and blank lines", "# layer loads\n1, 2.5\n\n 3 ,4 \n", [][]float32{{1, 2.5}, {3, 4}}, nil, ""},
		{"csv crlf", "1,2\r\n3,4\r\n", [][]float32{{1, 2}, {3, 4}}, nil, ""},
		{"float32 rounding", "[[0.1]]", [][]float32{{0.1}}, nil, ""},
		{"ragged json", "[[1,2],[3]]", nil, ErrShape, "layer 1 has 1 experts"},
		{"ragged csv", "1,2\n3\n", nil, ErrShape, "layer 1 has 1 experts"},
		{"empty", "  \n", nil, ErrShape, "zero layers"},
		{"empty json", "[]", nil, ErrShape, "zero layers"},
		{"zero experts", "[[]]", nil, ErrShape, "zero experts"},
		{"NaN csv", "1,NaN\n", nil, ErrLoad, "NaN load at layer 0 expert 1"},
		{"Inf csv", "inf,1\n", nil, ErrLoad, "infinite load"},
		{"negative", "[[1,-2]]", nil, ErrLoad, "negative load -2 at layer 0 expert 1"},
		{"beyond float32", "[[1e39]]", nil, ErrLoad, "outside float32 range at layer 0 expert 0"},
		{"not a number", "1,x\n", nil, ErrSyntax, `"x" is not a number at line 1 field 2`},
		{"empty field", "1,,2\n", nil, ErrSyntax, "empty value at line 1 field 2"},
		{"bad json", "[[1,2]", nil, ErrSyntax, "weights JSON"},
		{"trailing json", "[[1]] [[2]]", nil, ErrSyntax, "trailing data"},
		{"null row", "[null]", nil, ErrSyntax, "layer 0 is not an array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := ParseWeights(strings.NewReader(tc.in))
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("err = %v, want %v naming %q", err, tc.err, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, w); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
