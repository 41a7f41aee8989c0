package svg

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/fireflyer-go/fireflyer/pipeline"
)

var pairRE = regexp.MustCompile(`^F\d+\.\d+&B\d+\.\d+$`)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

func TestSVGGolden(t *testing.T) {
	unit := pipeline.SimOptions{Costs: pipeline.OpCosts{F: 1, B: 2, W: 1, FB: 3}}
	cases := []struct {
		name     string
		m        pipeline.Method
		n, c     int
		simulate bool
	}{
		{"dualpipe-4x8-time", pipeline.MethodDualPipe, 4, 8, true},
		{"dualpipev-2x4-slots", pipeline.MethodDualPipeV, 2, 4, false},
		{"zb1p-4x6-time", pipeline.MethodZB1P, 4, 6, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := pipeline.Generate(tc.m, tc.n, tc.c)
			if err != nil {
				t.Fatal(err)
			}
			var opt Options
			if tc.simulate {
				if opt.Report, err = pipeline.Simulate(s, unit); err != nil {
					t.Fatal(err)
				}
			}
			var a, b bytes.Buffer
			if err := Write(&a, s, opt); err != nil {
				t.Fatal(err)
			}
			if err := Write(&b, s, opt); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatal("two renderings differ")
			}
			// Well-formed XML with one <g> per op and one <title> per op.
			d := xml.NewDecoder(bytes.NewReader(a.Bytes()))
			groups, pairs := 0, 0
			for {
				tok, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("not well-formed XML: %v", err)
				}
				if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "g" {
					groups++
				}
				if cd, ok := tok.(xml.CharData); ok && pairRE.MatchString(string(cd)) {
					pairs++
				}
			}
			ops, wantPairs := 0, 0
			for _, o := range s.Ops {
				ops += len(o)
				for _, x := range o {
					if x.Overlapped() {
						wantPairs++
					}
				}
			}
			if groups != ops || pairs != wantPairs {
				t.Errorf("%d cells (%d pairs), want %d (%d)", groups, pairs, ops, wantPairs)
			}
			golden := filepath.Join("testdata", tc.name+".svg")
			if *update {
				if err := os.WriteFile(golden, a.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Bytes(), want) {
				t.Errorf("SVG differs from %s (run with -update after checking the picture)", golden)
			}
		})
	}
}

func TestSVGReportMismatch(t *testing.T) {
	s, _ := pipeline.OneFOneB(2, 2)
	s4, _ := pipeline.OneFOneB(4, 4)
	rep, err := pipeline.Simulate(s4, pipeline.SimOptions{Costs: pipeline.OpCosts{F: 1, B: 2, W: 1, FB: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(io.Discard, s, Options{Report: rep}); !errors.Is(err, pipeline.ErrParam) {
		t.Fatalf("err = %v, want ErrParam", err)
	}
}

// TestWriteNil: a nil schedule is an error wrapping pipeline.ErrSchedule,
// not a panic.
func TestWriteNil(t *testing.T) {
	if err := Write(&bytes.Buffer{}, nil, Options{}); !errors.Is(err, pipeline.ErrSchedule) {
		t.Fatalf("Write(nil) = %v, want ErrSchedule", err)
	}
}
