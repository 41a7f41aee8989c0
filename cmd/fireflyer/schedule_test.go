package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runScheduleCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func TestScheduleText(t *testing.T) {
	out, _, code := runScheduleCLI(t, "schedule", "--method", "dualpipe", "--ranks", "4", "--chunks", "8", "--text")
	want := `r0: F0.0 F0.1 F0.2 F1.0 b1.0 W1.0 F1.1 F0.3&B1.1 F1.2&B0.0 B1.2 F1.3&B0.1 B1.3 b0.2 W0.2 b0.3 W0.3
r1: F0.0 F1.0 F0.1 F1.1 F0.2 B1.0 F1.2&B0.0 F0.3&B1.1 F1.3&B0.1 B1.2 B0.2 b1.3 b0.3 W1.3 W0.3
r2: F1.0 F0.0 F1.1 F0.1 F1.2 B0.0 F0.2&B1.0 F1.3&B0.1 F0.3&B1.1 B0.2 B1.2 b0.3 b1.3 W0.3 W1.3
r3: F1.0 F1.1 F1.2 F0.0 b0.0 W0.0 F0.1 F1.3&B0.1 F0.2&B1.0 B0.2 F0.3&B1.1 B0.3 b1.2 W1.2 b1.3 W1.3
`
	if code != 0 || out != want {
		t.Fatalf("code %d, output:\n%s\nwant:\n%s", code, out, want)
	}
	// DualPipeV(2, 4) prints the first two of those lines.
	out, _, code = runScheduleCLI(t, "schedule", "--method", "dualpipev", "--ranks", "2", "--chunks", "4")
	if lines := strings.Split(want, "\n"); code != 0 || out != lines[0]+"\n"+lines[1]+"\n" {
		t.Fatalf("code %d, dualpipev output:\n%s", code, out)
	}
}

func TestScheduleSimulate(t *testing.T) {
	out, _, code := runScheduleCLI(t, "schedule", "--method", "zb1p", "--ranks", "4", "--chunks", "8", "--simulate", "--cost", "F=1.5,B=3,W=1")
	want := `r0: busy 36 idle 7.5 peak 4
r1: busy 36 idle 7.5 peak 3
r2: busy 36 idle 7.5 peak 2
r3: busy 36 idle 7.5 peak 1
makespan 43.5 bubble_ratio 0.1724
`
	if code != 0 || out != want {
		t.Fatalf("code %d, output:\n%s\nwant:\n%s", code, out, want)
	}
}

func TestScheduleJSON(t *testing.T) {
	out, _, code := runScheduleCLI(t, "schedule", "--method", "dualpipe", "--ranks", "8", "--chunks", "16", "--simulate", "--json")
	if code != 0 {
		t.Fatalf("code %d", code)
	}
	var v struct {
		Method          string
		Ops             [][]string
		Simulated       bool
		Makespan        float64
		BubbleRatio     float64 `json:"bubble_ratio"`
		Idle            []float64
		PeakActivations []int `json:"peak_activations"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Fatal("more than one JSON value on stdout")
	}
	if v.Method != "dualpipe" || len(v.Ops) != 8 || !v.Simulated || len(v.Idle) != 8 {
		t.Fatalf("unexpected JSON: %+v", v)
	}
	for r := range v.Idle {
		if v.Idle[r] != 6 || v.PeakActivations[r] != 9 {
			t.Errorf("rank %d idle %v peak %d, want 6 and 9", r, v.Idle[r], v.PeakActivations[r])
		}
	}
	if v.Ops[0][7] != "F0.7&B1.1" && !strings.Contains(strings.Join(v.Ops[0], " "), "&") {
		t.Errorf("ops lack overlapped pairs: %v", v.Ops[0])
	}
}

func TestScheduleSVG(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.svg"), filepath.Join(dir, "b.svg")
	for _, f := range []string{a, b} {
		// --svg FILE adds the picture and changes nothing on standard
		// output: --simulate still prints its table (it used to print
		// nothing at all).
		out, _, code := runScheduleCLI(t, "schedule", "--method", "dualpipev", "--ranks", "4", "--chunks", "10", "--simulate", "--svg", f)
		plain, _, _ := runScheduleCLI(t, "schedule", "--method", "dualpipev", "--ranks", "4", "--chunks", "10", "--simulate")
		if code != 0 || out != plain || !strings.Contains(out, "makespan ") {
			t.Fatalf("code %d, stdout %q, want %q", code, out, plain)
		}
	}
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if len(x) == 0 || !bytes.Equal(x, y) || !bytes.HasPrefix(x, []byte("<svg ")) {
		t.Fatalf("SVG empty or not deterministic (%d, %d bytes)", len(x), len(y))
	}
	out, _, code := runScheduleCLI(t, "schedule", "--method", "1f1b", "--svg", "-")
	if code != 0 || !strings.HasPrefix(out, "<svg ") || !strings.HasSuffix(out, "</svg>\n") {
		t.Fatalf("--svg -: code %d, %.40q", code, out)
	}
	_, errs, code := runScheduleCLI(t, "schedule", "--svg", filepath.Join(dir, "no", "such", "dir.svg"))
	if code != 2 || !strings.Contains(errs, "--svg") {
		t.Fatalf("--svg into a missing directory: code %d, %q; want 2 before any work", code, errs)
	}
}

func TestScheduleBadUsage(t *testing.T) {
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"--method", "gpipe"}, "method"},
		{[]string{"--method", "dualpipe", "--ranks", "3"}, "ranks=3"},
		{[]string{"--method", "dualpipe", "--ranks", "4", "--chunks", "6"}, "chunks=6"},
		{[]string{"--method", "dualpipev", "--ranks", "4", "--chunks", "7"}, "chunks=7"},
		{[]string{"--method", "1f1b", "--ranks", "0"}, "ranks=0"},
		{[]string{"--text", "--json"}, "exclusive"},
		{[]string{"--simulate", "--cost", "F=1,B=1,W=2"}, "W must be ≤ B"},
		{[]string{"--simulate", "--cost", "F=x"}, "--cost"},
		{[]string{"--simulate", "--cost", "G=1"}, "--cost"},
		{[]string{"--simulate", "--cost", "F=-1"}, "--cost"},
		{[]string{"--simulate", "--cost", "F=1,F=2"}, "twice"},
		{[]string{"--simulate", "--p2p", "1e3"}, "--p2p"},
		{[]string{"--bogus"}, "bogus"},
		{[]string{"extra"}, "extra"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errs, code := runScheduleCLI(t, append([]string{"schedule"}, tc.args...)...)
			if code != 2 || out != "" || !strings.Contains(errs, tc.msg) {
				t.Fatalf("code %d stdout %q stderr %q; want 2 naming %q", code, out, errs, tc.msg)
			}
		})
	}
	out, errs, code := runScheduleCLI(t, "schedule", "-h")
	if code != 0 || out != "" || !strings.Contains(errs, "-cost") || !strings.Contains(errs, `default "dualpipe"`) {
		t.Fatalf("-h: code %d stderr %q", code, errs)
	}
}

func TestParseCostsScale(t *testing.T) {
	opt, scale, err := parseCosts("F=96,B=133,W=24,FB=129", "0.25")
	if err != nil {
		t.Fatal(err)
	}
	if scale != 100 || opt.Costs.F != 9600 || opt.Costs.FB != 12900 || opt.P2P != 25 {
		t.Fatalf("scale %d opt %+v", scale, opt)
	}
	opt, _, err = parseCosts("F=2,B=5", "0")
	if err != nil || opt.Costs.W != 1 || opt.Costs.FB != 7 {
		t.Fatalf("defaults: %+v %v", opt, err)
	}
}

func FuzzParseCosts(f *testing.F) {
	for _, s := range []string{"F=1,B=2,W=1,FB=3", "F=1.5", "FB=0.000001", "", ",,", "F&B=3", "W=9"} {
		f.Add(s, "0")
	}
	f.Fuzz(func(t *testing.T, spec, p2p string) {
		opt, scale, err := parseCosts(spec, p2p)
		if err != nil {
			return
		}
		if scale < 1 || opt.Costs.W > opt.Costs.B || opt.Costs.F < 0 || opt.P2P < 0 {
			t.Fatalf("accepted bad costs %q: %+v scale %d", spec, opt, scale)
		}
	})
}

func TestScheduleLower(t *testing.T) {
	out, _, code := runScheduleCLI(t, "schedule", "--method", "1f1b", "--ranks", "2", "--chunks", "2", "--lower", "reference")
	want := `r0: F0.0 send(r1,act0.0) commit F0.1 send(r1,act0.1) recv(r1,grad0.0) commit B0.0 recv(r1,grad0.1) commit B0.1
r1: recv(r0,act0.0) commit F0.0 B0.0 send(r0,grad0.0) recv(r0,act0.1) commit F0.1 B0.1 send(r0,grad0.1) commit
`
	if code != 0 || out != want {
		t.Fatalf("code %d, output:\n%s", code, out)
	}
	out, _, code = runScheduleCLI(t, "schedule", "--method", "dualpipev", "--ranks", "2", "--lower", "dataflow", "--json")
	var v struct{ Program [][]string }
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || len(v.Program) != 2 || v.Program[1][0] != "recv(r0,act0.0)" {
		t.Fatalf("code %d err %v program %v", code, err, v.Program)
	}
	if _, errs, code := runScheduleCLI(t, "schedule", "--lower", "nccl"); code != 2 || !strings.Contains(errs, "--lower") {
		t.Fatalf("code %d stderr %q", code, errs)
	}
}

func TestScheduleSimulateProgram(t *testing.T) {
	flow, _, code1 := runScheduleCLI(t, "schedule", "--method", "dualpipe", "--simulate", "--p2p", "1")
	ref, _, code2 := runScheduleCLI(t, "schedule", "--method", "dualpipe", "--simulate", "--p2p", "1", "--lower", "reference")
	if code1 != 0 || code2 != 0 {
		t.Fatalf("codes %d %d", code1, code2)
	}
	last := func(s string) string {
		l := strings.Split(strings.TrimSpace(s), "\n")
		return l[len(l)-1]
	}
	if last(flow) != "makespan 35 bubble_ratio 0.3143" || last(ref) != "makespan 38 bubble_ratio 0.3684" {
		t.Fatalf("dataflow %q, reference %q", last(flow), last(ref))
	}
}
