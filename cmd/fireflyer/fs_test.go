package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/fs"
)

func TestFSBenchText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.dat")
	var out, errb bytes.Buffer
	code := run([]string{"fs", "bench", "--backend", "posix", "--rw", "randwrite", "--bs", "4k", "--iodepth", "8", "--size", "1M", "--runtime", "100ms", path}, nil, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	s := out.String()
	for _, want := range []string{"backend=posix rw=randwrite bs=4KiB iodepth=8", "write: IOPS=", "lat (usec): min="} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if errb.Len() != 0 {
		t.Errorf("stderr not empty when not a terminal: %q", errb.String())
	}
}

func TestFSBenchJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.dat")
	for _, be := range []string{"uring", "mem"} {
		var out, errb bytes.Buffer
		code := run([]string{"fs", "bench", "--backend", be, "--rw", "read", "--bs", "64k", "--iodepth", "4", "--numjobs", "2", "--size", "2M", "--runtime", "0.1", "--json", path}, nil, &out, &errb)
		if code != exitOK {
			t.Fatalf("%s: exit %d, stderr %s", be, code, errb.String())
		}
		var res benchResult
		dec := json.NewDecoder(&out)
		if err := dec.Decode(&res); err != nil {
			t.Fatalf("%s: stdout is not one JSON object: %v", be, err)
		}
		if dec.More() {
			t.Fatalf("%s: more than one JSON value on stdout", be)
		}
		if res.Config.NumJobs != 2 || res.IOs <= 0 || res.Bytes != res.IOs*64<<10 || res.Errors != 0 || res.IOPS <= 0 || res.LatUS.P50 <= 0 || res.LatUS.P50 > res.LatUS.Max {
			t.Fatalf("%s: implausible result %+v", be, res)
		}
	}
}

func TestFSBenchUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"fs"},
		{"fs", "frob"},
		{"fs", "bench"},
		{"fs", "bench", "--bs", "0", dir + "/x"},
		{"fs", "bench", "--rw", "sideways", dir + "/x"},
		{"fs", "bench", "--iodepth", "0", dir + "/x"},
		{"fs", "bench", "--batch", "100", "--iodepth", "8", dir + "/x"},
		{"fs", "bench", "--runtime", "-1s", dir + "/x"},
		{"fs", "bench", "--numjobs", "0", dir + "/x"},
		{"fs", "bench", "--backend", "nfs", dir + "/x"},
		{"fs", "bench", "--size", "1k", "--bs", "4k", dir + "/x"},
		{"fs", "bench", "--nope", dir + "/x"},
		// the mem backend keeps the file in memory: a size beyond the
		// machine used to be laid out until the process was killed
		{"fs", "bench", "--backend", "mem", "--size", "64t", dir + "/x"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, nil, &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, exitUsage, errb.String())
		}
		if out.Len() != 0 {
			t.Errorf("%v: wrote to stdout: %q", args, out.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"fs", "bench", "-h"}, nil, &out, &errb); code != exitOK || !strings.Contains(errb.String(), "-iodepth") {
		t.Errorf("-h: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if f, err := os.OpenFile(dir+"/probe", os.O_CREATE|os.O_RDWR|fs.ODirect, 0o600); err != nil {
		t.Logf("O_DIRECT unsupported in %s (%v): misaligned --direct case skipped", dir, err)
	} else {
		f.Close()
		if code := run([]string{"fs", "bench", "--backend", "posix", "--direct", "--bs", "1000", "--size", "1M", "--runtime", "10ms", dir + "/d"}, nil, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "--bs 1000") {
			t.Errorf("misaligned --direct: exit %d, want %d with a message naming --bs: %q", code, exitUsage, errb.String())
		}
		// the run failed after laying the file out: the file it created is gone
		if _, err := os.Stat(dir + "/d"); !os.IsNotExist(err) {
			t.Errorf("failed run left the file it created: %v", err)
		}
	}
}

// TestFSBenchBadPath: PATH and --size problems are usage errors (exit 2)
// that name the argument, found before anything is created.
func TestFSBenchBadPath(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{dir}, "is a directory"},
		{[]string{"/dev/null"}, "not a regular file"},
		{[]string{dir + "/missing/f.dat"}, "does not exist"},
		// "-" is standard input elsewhere; it used to create ./- here
		{[]string{"--size", "4k", "-"}, `PATH "-"`},
		// a 100 TB file used to be laid out until the disk filled
		{[]string{"--size", "100t", dir + "/f.dat"}, "--size 100t"},
		{[]string{"--backend", "uring", "--size", "100t", dir + "/f.dat"}, "--size"},
		// 100 million posix workers used to grow memory without bound
		{[]string{"--backend", "posix", "--workers", "100000000", dir + "/f.dat"}, "--workers 100000000"},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"fs", "bench", "--runtime", "1s"}, c.args...)
		if code := run(args, nil, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d naming %q", c.args, code, errb.String(), exitUsage, c.want)
		}
		if out.Len() != 0 {
			t.Errorf("%v: wrote to stdout: %q", c.args, out.String())
		}
	}
	for _, f := range []string{dir + "/f.dat", "-"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("a refused run created %s: %v", f, err)
		}
	}
}

// cancelOnLayout cancels the bench's context at the first layout progress
// report, as an interrupt (SIGINT) during the layout does.
type cancelOnLayout struct {
	cancel  context.CancelFunc
	reports int
}

func (p *cancelOnLayout) layout(done, total int64) { p.reports++; p.cancel() }
func (p *cancelOnLayout) run(float64)              {}
func (p *cancelOnLayout) finish()                  {}

// TestFSBenchInterruptedLayoutRemovesFile: an interrupt while the file is
// laid out stops the layout and removes the file the run created, but
// never a file that was there before.
func TestFSBenchInterruptedLayoutRemovesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.dat")
	cfg := benchConfig{Backend: "posix", RW: "read", BS: 4096, IODepth: 4, NumJobs: 1, Batch: 1, Size: 1 << 30, Runtime: time.Second, Seed: 1, Path: path}
	ctx, cancel := context.WithCancel(context.Background())
	p := &cancelOnLayout{cancel: cancel}
	if _, err := fsBench(ctx, cfg, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted layout: %v, want context.Canceled", err)
	}
	if p.reports == 0 {
		t.Fatal("no layout progress reported")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("interrupted run left the file it created: %v", err)
	}
	// A file that existed stays, even when the run is interrupted.
	if err := os.WriteFile(path, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	if _, err := fsBench(ctx, cfg, &cancelOnLayout{cancel: cancel}); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted layout of an existing file: %v", err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() < 4096 {
		t.Fatalf("interrupted run removed or cut a file it did not create: %v", err)
	}
}

func TestLatHist(t *testing.T) {
	var h latHist
	for v := int64(1); v <= 100000; v++ {
		h.add(v * 1000) // 1us .. 100ms uniform
	}
	s := h.summary()
	for _, c := range []struct{ got, want float64 }{{s.P50, 50000}, {s.P90, 90000}, {s.P99, 99000}, {s.Min, 1}, {s.Max, 100000}, {s.Mean, 50000.5}} {
		if c.got < c.want*0.97 || c.got > c.want*1.03 {
			t.Errorf("got %v, want %v within 3%%", c.got, c.want)
		}
	}
	for _, c := range []struct {
		in   string
		want int64
	}{{"4k", 4096}, {"1M", 1 << 20}, {"256MiB", 256 << 20}, {"2g", 2 << 30}, {"512", 512}} {
		if v, err := parseSize(c.in); err != nil || v != c.want {
			t.Errorf("parseSize(%q) = %d, %v", c.in, v, err)
		}
	}
	if _, err := parseSize("x1k"); err == nil {
		t.Error("parseSize accepted garbage")
	}
}

func TestFSBenchHF3FSOffMount(t *testing.T) {
	var out, errb bytes.Buffer
	path := t.TempDir() + "/f"
	code := run([]string{"fs", "bench", "--backend", "hf3fs", "--size", "1M", "--runtime", "50ms", path}, nil, &out, &errb)
	if code != exitFail || !strings.Contains(errb.String(), "not on a 3FS mount") {
		t.Fatalf("hf3fs off a 3FS mount: exit %d, stderr %q", code, errb.String())
	}
}

// TestFSBenchWrap runs fs bench --wrap (caller memory registered with
// WrapBuffer) on the local backends: the I/O completes without errors,
// the figures are reported like a normal run, and wrap shows in both
// outputs.
func TestFSBenchWrap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.dat")
	for _, be := range []string{"posix", "uring", "mem"} {
		for _, rw := range []string{"randread", "write"} {
			var out, errb bytes.Buffer
			code := run([]string{"fs", "bench", "--wrap", "--backend", be, "--rw", rw, "--bs", "16k", "--iodepth", "8", "--size", "1M", "--runtime", "50ms", "--json", path}, nil, &out, &errb)
			if code != exitOK {
				t.Fatalf("%s %s: exit %d, stderr %s", be, rw, code, errb.String())
			}
			var res benchResult
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("%s %s: %v", be, rw, err)
			}
			if !res.Config.Wrap || res.IOs <= 0 || res.Errors != 0 || res.Bytes != res.IOs*16<<10 {
				t.Fatalf("%s %s --wrap: implausible result %+v", be, rw, res)
			}
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"fs", "bench", "--wrap", "--backend", "posix", "--bs", "4k", "--iodepth", "4", "--size", "64k", "--runtime", "20ms", path}, nil, &out, &errb); code != exitOK || !strings.Contains(out.String(), "wrap=true") {
		t.Fatalf("text output with --wrap: exit %d, %q %q", code, out.String(), errb.String())
	}
}
