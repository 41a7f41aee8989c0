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

// TestSVGCompare draws two timings of one schedule: two rows per rank, every
// op twice, at each report's own times on one axis, with the row labels.
func TestSVGCompare(t *testing.T) {
	s, err := pipeline.DualPipeV(2, 4)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := pipeline.Simulate(s, pipeline.SimOptions{Costs: pipeline.OpCosts{F: 1, B: 2, W: 1, FB: 3}})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := pipeline.Simulate(s, pipeline.SimOptions{Costs: pipeline.OpCosts{F: 2, B: 4, W: 2, FB: 6}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, s, Options{Report: slow, Compare: fast, Labels: [2]string{"measured", "predicted"}}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	ops := 0
	for _, o := range s.Ops {
		ops += len(o)
	}
	if n := bytes.Count(buf.Bytes(), []byte("<g><title>")); n != 2*ops {
		t.Fatalf("%d op cells, want %d (every op twice)", n, 2*ops)
	}
	for _, want := range []string{">r0 measured<", ">r0 predicted<", ">r1 measured<", ">r1 predicted<"} {
		if !bytes.Contains(buf.Bytes(), []byte(want)) {
			t.Errorf("no row label %q", want)
		}
	}
	if err := xml.Unmarshal([]byte(out), new(struct{})); err != nil {
		t.Fatalf("not well-formed: %v", err)
	}
	// The slower report spans the whole axis; the faster ends half-way.
	if slow.Makespan != 2*fast.Makespan {
		t.Fatalf("makespans %d and %d", slow.Makespan, fast.Makespan)
	}
	// Compare needs Report, and must fit the schedule.
	if err := Write(io.Discard, s, Options{Compare: fast}); !errors.Is(err, pipeline.ErrParam) {
		t.Errorf("Compare without Report: %v", err)
	}
	other, _ := pipeline.DualPipeV(2, 6)
	wrong, _ := pipeline.Simulate(other, pipeline.SimOptions{Costs: pipeline.OpCosts{F: 1, B: 2, W: 1, FB: 3}})
	if err := Write(io.Discard, s, Options{Report: slow, Compare: wrong}); !errors.Is(err, pipeline.ErrParam) {
		t.Errorf("Compare of another schedule: %v", err)
	}
}
