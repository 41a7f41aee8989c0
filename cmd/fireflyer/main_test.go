package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// runCLI runs the CLI in-process and returns its exit code and streams.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestDispatcher(t *testing.T) {
	if code, _, stderr := runCLI(t, ""); code != exitUsage || !strings.Contains(stderr, "usage:") {
		t.Errorf("no args: code %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "", "frobnicate"); code != exitUsage || !strings.Contains(stderr, `unknown subcommand "frobnicate"`) {
		t.Errorf("unknown: code %d, stderr %q", code, stderr)
	}
	code, stdout, _ := runCLI(t, "", "help")
	if code != exitOK || !strings.Contains(stdout, "info") {
		t.Errorf("help: code %d, stdout %q", code, stdout)
	}
	// help lists every subcommand's flags with their defaults, on standard
	// output; help SUBCOMMAND the flags of one (it used to write them to
	// standard error and list no flags at all).
	for _, name := range []string{"eplb", "info", "schedule"} {
		if !strings.Contains(stdout, "usage: fireflyer "+name) {
			t.Errorf("help does not list the flags of %s:\n%s", name, stdout)
		}
	}
	if code, stdout, stderr := runCLI(t, "", "help", "info"); code != exitOK || stderr != "" || !strings.Contains(stdout, "-json") {
		t.Errorf("help info: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// Help about help is the help (these used to be "unknown subcommand",
	// exit 2).
	for _, h := range []string{"help", "-h", "--help"} {
		if code, out, stderr := runCLI(t, "", "help", h); code != exitOK || stderr != "" || out != stdout {
			t.Errorf("help %s: code %d, stderr %q, stdout differs from help's: %v", h, code, stderr, out != stdout)
		}
	}
	if code, _, stderr := runCLI(t, "", "help", "frobnicate"); code != exitUsage || !strings.Contains(stderr, `unknown subcommand "frobnicate"`) {
		t.Errorf("help frobnicate: code %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "", "info", "-h"); code != exitOK || !strings.Contains(stderr, "-json") {
		t.Errorf("info -h: code %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCLI(t, "", "info", "--bogus"); code != exitUsage {
		t.Errorf("info --bogus: code %d", code)
	}
}

func TestInfo(t *testing.T) {
	code, stdout, _ := runCLI(t, "", "info")
	if code != exitOK {
		t.Fatalf("code %d", code)
	}
	for _, want := range []string{"go:", "cpu:", "gpus:", "rdma:", "io_uring:", "backends:", "\n  gemm       ref     usable    "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("info output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = runCLI(t, "", "info", "--json")
	if code != exitOK {
		t.Fatalf("--json: code %d", code)
	}
	var r infoReport
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("--json output is not one JSON object: %v", err)
	}
	if dec.More() {
		t.Fatal("--json printed more than one object")
	}
	if r.GoVersion == "" || len(r.Backends) == 0 {
		t.Errorf("incomplete report: %+v", r)
	}
	if len(r.GPUs) == 0 && r.GPUError == "" {
		t.Error("no GPU and no reason")
	}
	if len(r.RDMA) == 0 && r.RDMAError == "" {
		t.Error("no RDMA device and no reason")
	}
}

// TestSubcommandHelpStreams: 'fireflyer X -h' prints its help on standard
// error and exits 0, like the flag package, for every subcommand; 'fireflyer
// help X' prints the same text on standard output.
func TestSubcommandHelpStreams(t *testing.T) {
	for _, name := range commandNames() {
		var out, errb bytes.Buffer
		if code := run([]string{name, "-h"}, nil, &out, &errb); code != exitOK || out.Len() != 0 || errb.Len() == 0 {
			t.Errorf("%s -h: exit %d, stdout %d bytes, stderr %d bytes", name, code, out.Len(), errb.Len())
		}
		out.Reset()
		errb.Reset()
		if code := run([]string{"help", name}, nil, &out, &errb); code != exitOK || out.Len() == 0 || errb.Len() != 0 {
			t.Errorf("help %s: exit %d, stdout %d bytes, stderr %d bytes", name, code, out.Len(), errb.Len())
		}
	}
}
