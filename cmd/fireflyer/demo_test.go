package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemoCLI(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "dualpipe.svg")
	code, stdout, stderr := runCLI(t, "", "demo", "--scale", "64", "--batch", "8", "--ranks", "2", "--prefix", "24", "--svg", svg)
	if code != exitOK {
		t.Fatalf("exit %d\nstderr: %s\nstdout: %s", code, stderr, stdout)
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "check: calc_diff=") || !strings.HasSuffix(last, " threshold=0.002 ok") {
		t.Fatalf("last line %q", last)
	}
	for _, want := range []string{"checkpoint read:", "attention: MLA decode", "experts: masked grouped FP8 GEMMs", "eplb:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if b, err := os.ReadFile(svg); err != nil || !strings.Contains(string(b), "<svg") {
		t.Fatalf("svg: %v", err)
	}

	code, stdout, _ = runCLI(t, "", "demo", "--scale", "64", "--batch", "8", "--ranks", "2", "--prefix", "24", "--json")
	var obj map[string]any
	dec := json.NewDecoder(strings.NewReader(stdout))
	if code != exitOK || dec.Decode(&obj) != nil || dec.More() {
		t.Fatalf("--json: exit %d, output %q", code, stdout)
	}
	if obj["ok"] != true || obj["calc_diff"].(float64) >= 0.002 {
		t.Fatalf("--json result: ok=%v calc_diff=%v", obj["ok"], obj["calc_diff"])
	}

	if code, _, stderr := runCLI(t, "", "demo", "--transport", "carrier-pigeon"); code != exitUsage || !strings.Contains(stderr, "--transport") {
		t.Fatalf("bad transport: exit %d, %q", code, stderr)
	}
}
