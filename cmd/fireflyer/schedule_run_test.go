package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestScheduleRun runs one DualPipeV step across 2 rank processes (this
// test binary again, `rank schedule`) with sleeping stages and checks the
// printed lines and the picture of measured next to simulated timelines.
func TestScheduleRun(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "run.svg")
	out, errs, code := runScheduleCLI(t, "schedule", "--run", "--method", "dualpipev", "--ranks", "2", "--chunks", "4",
		"--cost", "F=2,B=4,W=2", "--lower", "reference", "--svg", svg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	rankRE := regexp.MustCompile(`^r(\d): measured busy ([0-9.]+) idle ([0-9.]+) simulated busy 48 idle 4$`)
	if len(lines) != 3 {
		t.Fatalf("want 3 lines:\n%s", out)
	}
	for r, l := range lines[:2] {
		m := rankRE.FindStringSubmatch(l)
		if m == nil || m[1] != strconv.Itoa(r) {
			t.Fatalf("line %q", l)
		}
		// Each rank sleeps 4 × (2+2+2) × 2 stages = 48 ms in its stages.
		if busy, _ := strconv.ParseFloat(m[2], 64); busy < 48 || busy > 48*3 {
			t.Fatalf("rank %d busy %v ms, want about 48", r, busy)
		}
	}
	last := regexp.MustCompile(`^makespan measured ([0-9.]+) simulated 52 simulated/measured ([0-9.]+)$`).FindStringSubmatch(lines[2])
	if last == nil {
		t.Fatalf("line %q", lines[2])
	}
	if ratio, _ := strconv.ParseFloat(last[2], 64); !(ratio > 0.2 && ratio <= 1) {
		t.Fatalf("simulated/measured %v: the sleeping stages cannot beat the simulation", ratio)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "r0 run", "r0 sim", "r1 run", "r1 sim", "measured"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestScheduleRunBadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--run", "--json"},
		{"--run", "--text"},
		{"--run", "--transport", "udp"},
		{"--run", "--timeout", "0s"},
		{"--run", "--ranks", "65", "--method", "1f1b"},
		{"--run", "--cost", "F=0.0001"},
		{"--run", "--cost", "W=5"},
	} {
		out, errs, code := runScheduleCLI(t, append([]string{"schedule"}, args...)...)
		if code != 2 || out != "" || errs == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2, nothing, a message", args, code, out, errs)
		}
	}
}
