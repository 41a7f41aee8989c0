package eplbio

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fireflyer-go/fireflyer/eplb"
)

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
			if !errors.Is(err, eplb.ErrSyntax) && !errors.Is(err, eplb.ErrLoad) && !errors.Is(err, eplb.ErrShape) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		if err := eplb.ValidateWeights(w); err != nil {
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
			if !errors.Is(err, eplb.ErrSyntax) && !errors.Is(err, eplb.ErrPlan) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		if err := eplb.ValidatePlan(p); err != nil {
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
		{"ragged json", "[[1,2],[3]]", nil, eplb.ErrShape, "layer 1 has 1 experts"},
		{"ragged csv", "1,2\n3\n", nil, eplb.ErrShape, "layer 1 has 1 experts"},
		{"empty", "  \n", nil, eplb.ErrShape, "zero layers"},
		{"empty json", "[]", nil, eplb.ErrShape, "zero layers"},
		{"zero experts", "[[]]", nil, eplb.ErrShape, "zero experts"},
		{"NaN csv", "1,NaN\n", nil, eplb.ErrLoad, "NaN load at layer 0 expert 1"},
		{"Inf csv", "inf,1\n", nil, eplb.ErrLoad, "infinite load"},
		{"negative", "[[1,-2]]", nil, eplb.ErrLoad, "negative load -2 at layer 0 expert 1"},
		{"beyond float32", "[[1e39]]", nil, eplb.ErrLoad, "outside float32 range at layer 0 expert 0"},
		{"not a number", "1,x\n", nil, eplb.ErrSyntax, `"x" is not a number at line 1 field 2`},
		{"empty field", "1,,2\n", nil, eplb.ErrSyntax, "empty value at line 1 field 2"},
		{"bad json", "[[1,2]", nil, eplb.ErrSyntax, "weights JSON"},
		{"trailing json", "[[1]] [[2]]", nil, eplb.ErrSyntax, "trailing data"},
		{"null row", "[null]", nil, eplb.ErrSyntax, "layer 0 is not an array"},
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

// TestSizeLimits: load matrices past eplb.MaxCells fail fast with
// ErrShape. MaxCells used to be 2^26, at which 98 MB of JSON loads took
// 6.5 GB before any check ran.
func TestSizeLimits(t *testing.T) {
	row := strings.Repeat("1,", 1023) + "1"
	layers := eplb.MaxCells/1024 + 1
	csv := strings.Repeat(row+"\n", layers)
	js := "[" + strings.Repeat("["+row+"],", layers-1) + "[" + row + "]]"
	for name, in := range map[string]string{"csv": csv, "json": js} {
		t.Run("ParseWeights/"+name, func(t *testing.T) {
			_, err := ParseWeights(strings.NewReader(in))
			if !errors.Is(err, eplb.ErrShape) || !strings.Contains(err.Error(), "MaxCells") {
				t.Fatalf("%d × 1024 loads: err %v, want ErrShape naming MaxCells", layers, err)
			}
		})
	}
	t.Run("ParseWeights/at-limit", func(t *testing.T) {
		if testing.Short() {
			t.Skip("parses 2^22 loads")
		}
		w, err := ParseWeights(strings.NewReader(strings.Repeat(row+"\n", eplb.MaxCells/1024)))
		if err != nil || len(w) != eplb.MaxCells/1024 {
			t.Fatalf("%d × 1024 loads: %d rows, err %v", eplb.MaxCells/1024, len(w), err)
		}
	})
}

// TestParseWeightsBOM: a UTF-8 byte-order mark (Excel's "CSV UTF-8") is
// skipped; it used to fail with `"\ufeff1" is not a number`.
func TestParseWeightsBOM(t *testing.T) {
	for _, in := range []string{"\ufeff1,2\n3,4\n", "\ufeff[[1,2],[3,4]]"} {
		w, err := ParseWeights(strings.NewReader(in))
		if err != nil || len(w) != 2 || w[1][1] != 4 {
			t.Errorf("ParseWeights(%q) = %v, %v", in, w, err)
		}
	}
}
