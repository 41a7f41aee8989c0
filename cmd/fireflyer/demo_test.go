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

	// --svg - puts the picture, and only it, on standard output, like
	// eplb's and schedule's (it used to create a file named "-"); with
	// --json it is a usage error.
	code, stdout, stderr = runCLI(t, "", "demo", "--scale", "64", "--batch", "8", "--ranks", "2", "--prefix", "24", "--svg", "-")
	if code != exitOK || !strings.HasPrefix(stdout, "<svg") || !strings.HasSuffix(strings.TrimSpace(stdout), "</svg>") || stderr != "" {
		t.Fatalf("--svg -: exit %d, stderr %q, stdout starts %q", code, stderr, stdout[:min(len(stdout), 80)])
	}
	if _, err := os.Stat("-"); !os.IsNotExist(err) {
		t.Fatalf("--svg - created a file named -: %v", err)
	}
	if code, stdout, stderr := runCLI(t, "", "demo", "--svg", "-", "--json"); code != exitUsage || stdout != "" || !strings.Contains(stderr, "--svg -") {
		t.Fatalf("--svg - --json: exit %d, stdout %q, stderr %q", code, stdout, stderr)
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

// TestDemoV32CLI: `demo --model v3.2` runs the sparse step and ends with a
// passing check line; --json carries the indexer's check.
func TestDemoV32CLI(t *testing.T) {
	args := []string{"demo", "--model", "v3.2", "--scale", "64", "--batch", "4", "--ranks", "2", "--prefix", "160"}
	code, stdout, stderr := runCLI(t, "", args...)
	if code != exitOK {
		t.Fatalf("exit %d\nstderr: %s\nstdout: %s", code, stderr, stdout)
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "check: calc_diff=") || !strings.HasSuffix(last, " threshold=0.002 ok") {
		t.Fatalf("last line %q", last)
	}
	for _, want := range []string{"model: DeepSeek-V3.2", "indexer: logits over the FP8 indexer cache", "indexer: top-k", "attention: sparse MLA decode", "indexer: logits calc_diff="} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	code, stdout, _ = runCLI(t, "", append(args, "--json")...)
	var obj struct {
		OK      bool `json:"ok"`
		Indexer *struct {
			TopK     int     `json:"index_topk"`
			CalcDiff float64 `json:"calc_diff"`
		} `json:"indexer"`
	}
	if code != exitOK || json.Unmarshal([]byte(stdout), &obj) != nil || !obj.OK || obj.Indexer == nil || obj.Indexer.TopK != 64 || !(obj.Indexer.CalcDiff > 0) {
		t.Fatalf("--json: exit %d, %+v", code, obj)
	}
	// A V3.2 config.json given with --config runs as V3.2 without --model;
	// --model v3 with it is bad usage.
	cfg := filepath.Join("internal", "dsv3", "config_v32.json")
	code, stdout, stderr = runCLI(t, "", "demo", "--config", cfg, "--scale", "64", "--batch", "2", "--ranks", "2", "--prefix", "80")
	if code != exitOK || !strings.Contains(stdout, "model: DeepSeek-V3.2") {
		t.Fatalf("--config config_v32.json: exit %d, %s\n%s", code, stderr, stdout)
	}
	if code, _, stderr := runCLI(t, "", "demo", "--config", cfg, "--model", "v3"); code != exitUsage || !strings.Contains(stderr, "--model v3") {
		t.Fatalf("--model v3 with a V3.2 config: exit %d, %q", code, stderr)
	}
}

// TestDemoCLIBadInput: bad flag values and bad checkpoints exit 2 with a
// message naming the argument or the file (CLI.md), before any work.
func TestDemoCLIBadInput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	if code, _, stderr := runCLI(t, "", "demo", "--scale", "64", "--batch", "4", "--ranks", "2", "--prefix", "20", "--dir", dir); code != exitOK {
		t.Fatalf("generate: exit %d: %s", code, stderr)
	}
	trunc := filepath.Join(t.TempDir(), "trunc")
	if err := os.MkdirAll(trunc, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "model-00002-of-00002.safetensors" {
			b = b[:len(b)/2]
		}
		if err := os.WriteFile(filepath.Join(trunc, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The model line names the checkpoint, not a --scale that did not apply.
	code, stdout, stderr := runCLI(t, "", "demo", "--checkpoint", dir, "--batch", "4", "--ranks", "2", "--prefix", "20")
	if first := strings.SplitN(stdout, "\n", 2)[0]; code != exitOK || !strings.Contains(first, "read from "+dir) || strings.Contains(first, "scale") {
		t.Errorf("--checkpoint: exit %d, first line %q, stderr %q", code, first, stderr)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch", "0"}, "--batch"},
		{[]string{"--scale", "0"}, "--scale"},
		{[]string{"--ranks", "0"}, "--ranks"},
		{[]string{"--prefix", "0"}, "--prefix"},
		{[]string{"--fs-backend", "floppy"}, "--fs-backend"},
		{[]string{"--checkpoint", filepath.Join(t.TempDir(), "absent")}, "--checkpoint"},
		{[]string{"--checkpoint", trunc, "--batch", "4", "--ranks", "2"}, "model-00002-of-00002.safetensors"},
		{[]string{"--checkpoint", dir, "--layer", "9"}, "model.layers.9."},
		{[]string{"--checkpoint", dir, "--scale", "4"}, "--scale"},
		{[]string{"--checkpoint", dir, "--dir", t.TempDir()}, "--dir"},
	} {
		code, stdout, stderr := runCLI(t, "", append([]string{"demo"}, c.args...)...)
		if code != exitUsage || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("demo %v: exit %d, stderr %q, stdout %q; want exit 2 naming %s", c.args, code, stderr, stdout, c.want)
		}
	}
}
