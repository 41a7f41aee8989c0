package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const readmeJSON = "[[90,132,40,61,104,165,39,4,73,56,183,86],[20,107,104,64,19,197,187,157,172,86,16,27]]\n"

const readmeCSV = "# upstream README example\n90,132,40,61,104,165,39,4,73,56,183,86\n20,107,104,64,19,197,187,157,172,86,16,27\n"

var readmeFlags = []string{"eplb", "--replicas", "16", "--groups", "4", "--nodes", "2", "--gpus", "8"}

var readmePhy2Log = [][]int{
	{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1},
	{7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1},
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// decodeOutput checks that stdout is exactly one JSON object with exactly the
// documented keys and returns it.
func decodeOutput(t *testing.T, stdout string) map[string]json.RawMessage {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, stdout)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("stdout has more than one JSON value")
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if d := cmp.Diff([]string{"log2phy", "logcnt", "metrics", "phy2log", "phyrank"}, keys); d != "" {
		t.Fatalf("JSON keys (-want +got):\n%s", d)
	}
	return obj
}

func TestEPLBReadmeJSON(t *testing.T) {
	jsonFile := writeFile(t, "w.json", readmeJSON)
	csvFile := writeFile(t, "w.csv", readmeCSV)
	for _, tc := range []struct {
		name, stdin string
		args        []string
	}{
		{"JSON file", "", []string{jsonFile}},
		{"CSV file", "", []string{csvFile}},
		{"stdin", readmeJSON, nil},
		{"stdin dash", readmeCSV, []string{"-"}},
		{"file before flags", "", []string{jsonFile, "--policy", "auto"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append(slices.Clone(readmeFlags), "--json"), tc.args...)
			code, stdout, stderr := runCLI(t, tc.stdin, args...)
			if code != exitOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			obj := decodeOutput(t, stdout)
			var phy2log [][]int
			if err := json.Unmarshal(obj["phy2log"], &phy2log); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(readmePhy2Log, phy2log); d != "" {
				t.Errorf("phy2log (-want +got):\n%s", d)
			}
			var log2phy [][][]int
			if err := json.Unmarshal(obj["log2phy"], &log2phy); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff([]int{15, 13}, log2phy[0][1]); d != "" {
				t.Errorf("log2phy[0][1] (-want +got):\n%s", d)
			}
			var m struct {
				GPULoad      [][]float64 `json:"gpu_load"`
				MaxImbalance float64     `json:"max_imbalance"`
				SlotsChanged int         `json:"slots_changed"`
				Duplicates   int         `json:"duplicates"`
			}
			if err := json.Unmarshal(obj["metrics"], &m); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff([]float64{121.5, 86.5, 125, 113, 147.5, 131.5, 156, 152}, m.GPULoad[0]); d != "" {
				t.Errorf("gpu_load[0] (-want +got):\n%s", d)
			}
			if m.SlotsChanged != -1 || m.Duplicates != 0 {
				t.Errorf("slots_changed %d duplicates %d, want -1, 0", m.SlotsChanged, m.Duplicates)
			}
		})
	}
}

const readmeTable = `policy hierarchical: 2 layers, 12 experts, 16 replicas, 8 GPUs, 2 nodes, 4 groups

layer 0
gpu  node  load   experts
0    0     121.5  5 6
1    0     86.5   5 7
2    0     125    8 4
3    0     113    3 4
4    1     147.5  10 9
5    1     131.5  10 2
6    1     156    0 1
7    1     152    11 1

layer 1
gpu  node  load   experts
0    0     173    7 10
1    0     179.5  6 8
2    0     120.5  6 11
3    0     172    8 9
4    1     123    2 4
5    1     152    5 1
6    1     118.5  5 0
7    1     117.5  3 1

metrics
layer  max/mean  mean/max  before max/mean
0      1.208     0.828     1.851
1      1.242     0.805     2.381
max imbalance (max/mean): 1.242
mean balancedness (mean/max): 0.816
duplicates on one GPU: 0
`

func TestEPLBTable(t *testing.T) {
	code, stdout, stderr := runCLI(t, readmeJSON, readmeFlags...)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if d := cmp.Diff(readmeTable, stdout); d != "" {
		t.Errorf("table (-want +got):\n%s", d)
	}
}

func TestEPLBSVG(t *testing.T) {
	dir := t.TempDir()
	var outs []string
	var svgs [][]byte
	for i := range 2 {
		path := filepath.Join(dir, "plan"+string(rune('a'+i))+".svg")
		code, stdout, stderr := runCLI(t, readmeJSON, append(slices.Clone(readmeFlags), "--svg", path)...)
		if code != exitOK || stderr != "" {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		outs = append(outs, stdout)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		svgs = append(svgs, data)
	}
	if outs[0] != readmeTable {
		t.Errorf("--svg changed standard output:\n%s", outs[0])
	}
	if !bytes.Equal(svgs[0], svgs[1]) {
		t.Error("SVG is not deterministic")
	}
	// Well-formed XML with one bar per GPU, layer and side.
	dec := xml.NewDecoder(bytes.NewReader(svgs[0]))
	bars, root := 0, ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			if se.Name.Local == "title" {
				bars++
			}
		}
	}
	if root != "svg" || bars != 2*2*8 {
		t.Errorf("root <%s>, %d bars; want <svg>, 32", root, bars)
	}
	if !bytes.Contains(svgs[0], []byte("layer 0 GPU 0: 121.50")) || !bytes.Contains(svgs[0], []byte("max/mean 1.851 → 1.208")) {
		t.Error("SVG lacks the layer 0 loads")
	}
}

func TestEPLBPrevious(t *testing.T) {
	code, stdout, stderr := runCLI(t, readmeJSON, append(slices.Clone(readmeFlags), "--json")...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	prev := writeFile(t, "plan.json", stdout)

	// Same loads: nothing moves.
	code, stdout, stderr = runCLI(t, readmeJSON, append(slices.Clone(readmeFlags), "--json", "--previous", prev)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var m struct {
		Metrics struct {
			SlotsChanged int `json:"slots_changed"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatal(err)
	}
	if m.Metrics.SlotsChanged != 0 {
		t.Errorf("slots_changed = %d against its own plan, want 0", m.Metrics.SlotsChanged)
	}

	// Shifted loads: the table reports the count.
	shifted := "[[95,130,40,60,100,170,35,4,70,60,180,90],[20,107,104,64,19,197,187,157,172,86,16,27]]"
	code, stdout, stderr = runCLI(t, shifted, append(slices.Clone(readmeFlags), "--previous", prev)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "slots changed vs previous: 8 of 32\n") {
		t.Errorf("table lacks the slots-changed line:\n%s", stdout)
	}
}

func TestEPLBBadInput(t *testing.T) {
	jsonFile := writeFile(t, "w.json", readmeJSON)
	badPlan := writeFile(t, "bad.json", `{"phy2log":[[0]],"log2phy":[[[0]]],"logcnt":[[1]],"phyrank":[[0]]}`)
	notJSON := writeFile(t, "bad2.json", `not json`)
	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"NaN load", "1,NaN\n", []string{"eplb", "--replicas", "2", "--gpus", "1"}, "NaN load at layer 0 expert 1"},
		{"negative load", "[[1,-1]]", []string{"eplb", "--replicas", "2", "--gpus", "1"}, "negative load"},
		{"ragged rows", "1,2\n3\n", []string{"eplb", "--replicas", "2", "--gpus", "1"}, "layer 1 has 1 experts"},
		{"empty input", "", []string{"eplb", "--replicas", "2", "--gpus", "1"}, "zero layers"},
		{"syntax", "[[1,2]", []string{"eplb", "--replicas", "2", "--gpus", "1"}, "weights JSON"},
		{"missing replicas", readmeJSON, []string{"eplb", "--gpus", "8"}, "--replicas is required"},
		{"missing gpus", readmeJSON, []string{"eplb", "--replicas", "16"}, "--gpus is required"},
		{"bad policy", readmeJSON, append(slices.Clone(readmeFlags), "--policy", "best"), `--policy: eplb: bad config: policy "best"`},
		{"experts % groups", readmeJSON, []string{"eplb", "--replicas", "16", "--groups", "5", "--nodes", "1", "--gpus", "8"}, "experts (12) % groups (5) != 0"},
		{"groups % nodes forced hierarchical", readmeJSON, []string{"eplb", "--replicas", "16", "--groups", "4", "--nodes", "3", "--gpus", "6", "--policy", "hierarchical"}, "groups (4) % nodes (3) != 0"},
		{"gpus % nodes", readmeJSON, []string{"eplb", "--replicas", "16", "--groups", "4", "--nodes", "2", "--gpus", "5"}, "gpus (5) % nodes (2) != 0"},
		{"replicas % gpus", readmeJSON, []string{"eplb", "--replicas", "18", "--groups", "4", "--nodes", "2", "--gpus", "8"}, "replicas (18) % gpus (8) != 0"},
		{"replicas < experts", readmeJSON, []string{"eplb", "--replicas", "8", "--groups", "4", "--nodes", "2", "--gpus", "8"}, "replicas (8) < experts (12)"},
		{"unknown flag", readmeJSON, append(slices.Clone(readmeFlags), "--fast"), "flag provided but not defined: -fast"},
		{"two files", "", append(slices.Clone(readmeFlags), jsonFile, jsonFile), "at most one input FILE"},
		{"missing file", "", append(slices.Clone(readmeFlags), "/nonexistent/w.json"), "FILE: open /nonexistent/w.json"},
		{"previous of another shape", readmeJSON, append(slices.Clone(readmeFlags), "--previous", badPlan), "previous plan is 1 layers × 1 experts × 1 replicas"},
		{"previous not JSON", readmeJSON, append(slices.Clone(readmeFlags), "--previous", notJSON), "--previous " + notJSON},
		{"previous missing", readmeJSON, append(slices.Clone(readmeFlags), "--previous", "/nonexistent/p.json"), "--previous: open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.stdin, tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tc.want)
			}
		})
	}
}

func TestEPLBHelp(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "eplb", "-h")
	if code != exitOK || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	for _, want := range []string{"-replicas", "-groups", "-nodes", "-gpus", "-policy", `(default "auto")`, "(default 1)", "-no-duplicates", "-previous", "-json", "-svg"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("help lacks %q:\n%s", want, stderr)
		}
	}
}

func TestEPLBNoDuplicates(t *testing.T) {
	// Upstream issue #22's shape in miniature: one very hot expert gets
	// several replicas on one node; the reference stacks two on a GPU.
	load := "[[1000,1,1,1,1,1,1,1]]"
	args := []string{"eplb", "--replicas", "16", "--groups", "1", "--nodes", "1", "--gpus", "4", "--json"}
	for _, tc := range []struct {
		extra []string
		dup   bool
	}{{nil, true}, {[]string{"--no-duplicates"}, false}} {
		code, stdout, stderr := runCLI(t, load, append(slices.Clone(args), tc.extra...)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var out struct {
			Metrics struct {
				Duplicates int `json:"duplicates"`
			} `json:"metrics"`
		}
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatal(err)
		}
		if (out.Metrics.Duplicates > 0) != tc.dup {
			t.Errorf("%v: duplicates = %d", tc.extra, out.Metrics.Duplicates)
		}
	}
}

func FuzzEPLBInput(f *testing.F) {
	for _, s := range []string{readmeJSON, readmeCSV, "[[1,2]", "1,NaN\n", "", "[[1e39]]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var out, errb bytes.Buffer
		args := append(slices.Clone(readmeFlags), "--json")
		code := run(args, bytes.NewReader(data), &out, &errb)
		switch code {
		case exitOK:
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(out.Bytes(), &obj); err != nil || len(obj) != 5 {
				t.Fatalf("exit 0 with bad JSON (%v): %s", err, out.String())
			}
		case exitUsage:
			if out.Len() != 0 || errb.Len() == 0 {
				t.Fatalf("exit 2 with stdout %q stderr %q", out.String(), errb.String())
			}
		default:
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	})
}

// TestEPLBSVGMissingDir: an --svg path in a directory that does not exist
// is bad input, refused before the balancing runs.
func TestEPLBSVGMissingDir(t *testing.T) {
	code, stdout, stderr := runCLI(t, readmeJSON, append(slices.Clone(readmeFlags), "--json", "--svg", "/nonexistent/dir/out.svg")...)
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	if stdout != "" || !strings.Contains(stderr, "--svg /nonexistent/dir/out.svg: directory /nonexistent/dir") {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}
}

func TestEPLBJSONWithSVG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.svg")
	code, stdout, stderr := runCLI(t, readmeJSON, append(slices.Clone(readmeFlags), "--json", "--svg", path)...)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	decodeOutput(t, stdout) // still exactly one object
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Errorf("SVG not written: %v", err)
	}
}

// TestEPLBSVGStdout: "--svg -" puts the SVG (and nothing else) on standard
// output, as in fireflyer schedule; it used to create a file named "-".
func TestEPLBSVGStdout(t *testing.T) {
	t.Chdir(t.TempDir())
	code, stdout, stderr := runCLI(t, readmeJSON, append(slices.Clone(readmeFlags), "--svg", "-")...)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !strings.HasPrefix(stdout, "<svg ") || !strings.HasSuffix(stdout, "</svg>\n") {
		t.Errorf("stdout is not one SVG: %.60q", stdout)
	}
	if _, err := os.Stat("-"); err == nil {
		t.Error(`--svg - created a file named "-"`)
	}
	code, stdout, stderr = runCLI(t, readmeJSON, append(slices.Clone(readmeFlags), "--svg", "-", "--json")...)
	if code != exitUsage || stdout != "" || !strings.Contains(stderr, "--svg -") {
		t.Errorf("--svg - --json: exit %d, stdout %.40q, stderr %q", code, stdout, stderr)
	}
}

// TestEPLBTableExtremeLoads: loads near the float32 extremes print in
// exponent form; they used to print as 39-digit integers and 60-character
// decimals.
func TestEPLBTableExtremeLoads(t *testing.T) {
	code, stdout, stderr := runCLI(t, "3e38,3e38,1e-45,0\n", "eplb", "--replicas", "4", "--gpus", "4", "--policy", "global")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"3.0000000054977558e+38", "1.401298464324817e-45", "\n3    0     0     "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	for _, line := range strings.Split(stdout, "\n") {
		if len(line) > 80 {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
	}
	for _, x := range []struct {
		v    float64
		want string
	}{{121.5, "121.5"}, {1048576, "1048576"}, {0, "0"}, {1e21, "1e+21"}, {0.00001, "1e-05"}} {
		if got := fmtLoad(x.v); got != x.want {
			t.Errorf("fmtLoad(%v) = %q, want %q", x.v, got, x.want)
		}
	}
}
