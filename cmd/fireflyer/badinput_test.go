package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBadInputExit2 holds the CLI contract for the inputs that used to be
// accepted, run forever, or fail with exit 1 after the work: each exits 2
// at once, names the flag on standard error and prints nothing on standard
// output.
func TestBadInputExit2(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "not-a-checkpoint")
	if err := os.WriteFile(file, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	tinyMLA := []string{"--b", "1", "--sk", "1", "--hq", "1"}
	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"mla", "check", "--parts", "-1"}, "--parts"},
		{"", []string{"mla", "bench", "--parts", "-1"}, "--parts"},
		{"", []string{"mla", "check", "--parts", "2000000"}, "--parts"},
		{"1 2 3", []string{"mla", "plan", "--parts", "-1"}, "--parts"},
		{"", append([]string{"mla", "bench", "--rounds", "0"}, tinyMLA...), "--rounds"},
		{"", append([]string{"mla", "bench", "--rounds", "-3"}, tinyMLA...), "--rounds"},
		{"", append([]string{"mla", "bench", "--rounds", "100000000"}, tinyMLA...), "--rounds"},
		{"", []string{"gemm", "-m", "1", "-n", "1", "-k", "1", "--repeats", "100000000"}, "--repeats"},
		{"", []string{"gemm", "--repeats", "0"}, "--repeats"},
		{"", []string{"demo", "--checkpoint", file}, "--checkpoint"},
		{"", []string{"demo", "--svg", dir}, "--svg"},
		{"", []string{"safetensors", "ls", "/dev/zero"}, "not a regular file"},
		{"", []string{"mla", "plan", "/dev/zero"}, "seqlens"},
		{"", []string{"gemm", "--groups", "4"}, "--groups has no effect without --kgrouped"},
		{"", []string{"gemm", "--fp4-gran", "128"}, "--fp4-gran has no effect without --fp4"},
		{"", []string{"schedule", "--cost", "F=2"}, "--cost has no effect"},
		{"", []string{"schedule", "--simulate", "--timeout", "1s"}, "--timeout has no effect without --run"},
		{"", []string{"schedule", "--transport", "tcp"}, "--transport"},
		{"", []string{"demo", "--svg", filepath.Join(dir, "missing", "x.svg")}, "no such file"},
		{"", []string{"demo", "--svg", filepath.Join(file, "x.svg")}, "not a directory"},
		{"", []string{"schedule", "--method", "1f1b", "--svg", filepath.Join(dir, "missing", "x.svg")}, "--svg"},
		{"", []string{"demo", "--layer", "1000"}, "--layer"},
		{"", []string{"demo", "--layer", "61"}, "num_hidden_layers"},
		{"", []string{"demo", "--model", "v4"}, "--model"},
		{"", []string{"demo", "--model", "v3.2", "--layer", "61"}, "num_hidden_layers"},
		{readmeJSON, append(slices.Clone(readmeFlags), "--svg", dir), "--svg"},
		{"", []string{"schedule", "--method", "1f1b", "--svg", dir}, "--svg"},
		{readmeJSON, []string{"eplb", "--replicas", "16", "--gpus", "8", "--nodes", "0"}, "--nodes"},
		{readmeJSON, []string{"eplb", "--replicas", "16", "--gpus", "8", "--groups", "0"}, "--groups"},
		{readmeJSON, []string{"eplb", "--replicas", "16", "--gpus", "8", "--nodes", "-2"}, "--nodes"},
	} {
		t0 := time.Now()
		code, stdout, stderr := runCLI(t, c.stdin, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 naming %s", c.args, code, stdout, stderr, c.want)
		}
		// Refused before any work (the checks take microseconds; a run of
		// the demo or of 10^8 GEMMs takes seconds to hours).
		if d := time.Since(t0); d > 5*time.Second {
			t.Errorf("%v: took %v before refusing", c.args, d)
		}
	}
	// The picture was not written into the directory as some file.
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%s holds %d entries, want only %s", dir, len(ents), filepath.Base(file))
	}
}

// TestBoundsStillRun: the largest accepted run lengths and part counts are
// still accepted.
func TestBoundsStillRun(t *testing.T) {
	for _, args := range [][]string{
		{"mla", "check", "--b", "1", "--sk", "70", "--hq", "2", "--parts", "1048576"},
		{"mla", "bench", "--b", "1", "--sk", "1", "--hq", "1", "--rounds", "1"},
		{"gemm", "-m", "1", "-n", "1", "-k", "1", "--repeats", "1000"},
	} {
		if code, stdout, stderr := runCLI(t, "", args...); code != exitOK {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}
