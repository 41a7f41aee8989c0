package jit_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/cuda"
	"github.com/fireflyer-go/fireflyer/cuda/cudatest"
	"github.com/fireflyer-go/fireflyer/cuda/jit"
	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv("JIT_RACE_HELPER_DIR"); dir != "" {
		os.Exit(raceHelper(dir))
	}
	leaktest.Main(m)
}

// fakeBackend "compiles" by echoing its input, slowly enough that
// concurrent callers overlap.
type fakeBackend struct {
	calls atomic.Int32
	delay time.Duration
	major int
}

func (b *fakeBackend) Version() (int, int) { return b.major, 0 }

func (b *fakeBackend) Compile(p cuda.Program) (*cuda.Compiled, error) {
	b.calls.Add(1)
	time.Sleep(b.delay)
	if strings.Contains(p.Source, "#error") {
		return nil, &cuda.Error{Func: "nvrtcCompileProgram", Code: 6, Name: "NVRTC_ERROR_COMPILATION", Log: "k.cu(1): error: boom"}
	}
	img := []byte(fmt.Sprintf("IMAGE[%s|%s|%s]", p.Source, strings.Join(p.NameExpressions, ";"), strings.Join(p.Options, " ")))
	img = append(img, bytes.Repeat([]byte{0xCC}, 4096)...)
	low := map[string]string{}
	for _, e := range p.NameExpressions {
		low[e] = "_Z" + e
	}
	return &cuda.Compiled{Image: img, Lowered: low}, nil
}

var req = jit.Request{
	Source:   jit.Source{Name: "k.cu", Code: "template <int N> __global__ void k(float* x) { x[0] = N; }"},
	Instance: jit.Instance{Name: "k", Args: []string{"4"}},
	Arch:     "sm_90a",
}

func TestKeyCoversEveryInput(t *testing.T) {
	base := jit.Key(req, 13, 0)
	if len(base) != 64 || jit.Key(req, 13, 0) != base {
		t.Fatalf("key %q not a stable SHA-256", base)
	}
	variants := map[string]func() string{
		"source name": func() string { r := req; r.Source.Name = "j.cu"; return jit.Key(r, 13, 0) },
		"source code": func() string { r := req; r.Source.Code += " "; return jit.Key(r, 13, 0) },
		"template":    func() string { r := req; r.Instance.Args = []string{"8"}; return jit.Key(r, 13, 0) },
		"kernel name": func() string { r := req; r.Instance.Name = "k2"; return jit.Key(r, 13, 0) },
		"arch":        func() string { r := req; r.Arch = "sm_100a"; return jit.Key(r, 13, 0) },
		"flags":       func() string { r := req; r.Flags = []string{"-lineinfo"}; return jit.Key(r, 13, 0) },
		"nvrtc major": func() string { return jit.Key(req, 12, 0) },
		"nvrtc minor": func() string { return jit.Key(req, 13, 1) },
		// Length prefixes keep field boundaries: moving text between
		// fields changes the key.
		"boundary": func() string {
			r := req
			r.Source.Name, r.Source.Code = "k.cut", strings.TrimPrefix(req.Source.Code, "")
			return jit.Key(r, 13, 0)
		},
	}
	seen := map[string]string{base: "base"}
	for name, f := range variants {
		k := f()
		if prev, dup := seen[k]; dup {
			t.Errorf("%s gives the same key as %s", name, prev)
		}
		seen[k] = name
	}
}

func TestCompileCachesOnDisk(t *testing.T) {
	dir := t.TempDir()
	b := &fakeBackend{major: 13}
	var log bytes.Buffer
	c, err := jit.New(b, jit.Config{CacheDir: dir, Print: &log})
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.Compile(req)
	if err != nil {
		t.Fatal(err)
	}
	if k.Cached || k.Lowered != "_Zk<4>" || b.calls.Load() != 1 {
		t.Fatalf("first compile: cached=%v lowered=%q calls=%d", k.Cached, k.Lowered, b.calls.Load())
	}
	if want := filepath.Join(dir, "kernel.k."+k.Key+".bin"); k.Path != want {
		t.Errorf("path %s, want %s", k.Path, want)
	}
	if !strings.Contains(string(k.Image), "--gpu-architecture=sm_90a -std=c++17 -default-device -DNDEBUG") {
		t.Errorf("options not passed: %.120s", k.Image)
	}
	if !strings.Contains(log.String(), `NVRTC 13.0 compile k.cu "k<4>" --gpu-architecture=sm_90a`) {
		t.Errorf("compile command not printed: %q", log.String())
	}
	// Same process: served without the backend.
	if _, err := c.Compile(req); err != nil || b.calls.Load() != 1 {
		t.Fatalf("second compile: %v, %d calls", err, b.calls.Load())
	}
	// A new compiler (a new process) reads the file.
	b2 := &fakeBackend{major: 13}
	c2, _ := jit.New(b2, jit.Config{CacheDir: dir})
	k2, err := c2.Compile(req)
	if err != nil || !k2.Cached || b2.calls.Load() != 0 || !bytes.Equal(k2.Image, k.Image) || k2.Lowered != k.Lowered {
		t.Fatalf("disk hit: %v cached=%v calls=%d", err, k2 != nil && k2.Cached, b2.calls.Load())
	}
	// Another NVRTC version is another key.
	b3 := &fakeBackend{major: 12}
	c3, _ := jit.New(b3, jit.Config{CacheDir: dir})
	if k3, err := c3.Compile(req); err != nil || k3.Cached || k3.Key == k.Key {
		t.Fatalf("NVRTC 12 reused the 13 entry: %v", err)
	}
	// A corrupt file is recompiled and replaced.
	data, _ := os.ReadFile(k.Path)
	data[len(data)/2] ^= 1
	if err := os.WriteFile(k.Path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	b4 := &fakeBackend{major: 13}
	var log4 bytes.Buffer
	c4, _ := jit.New(b4, jit.Config{CacheDir: dir, Print: &log4})
	k4, err := c4.Compile(req)
	if err != nil || k4.Cached || b4.calls.Load() != 1 || !strings.Contains(log4.String(), "invalid") {
		t.Fatalf("corrupt entry: %v calls=%d log=%q", err, b4.calls.Load(), log4.String())
	}
	c5, _ := jit.New(&fakeBackend{major: 13}, jit.Config{CacheDir: dir})
	if k5, err := c5.Compile(req); err != nil || !k5.Cached {
		t.Fatalf("replaced entry not valid: %v", err)
	}
	// Truncated files too.
	if err := os.WriteFile(k.Path, data[:10], 0o644); err != nil {
		t.Fatal(err)
	}
	c6, _ := jit.New(&fakeBackend{major: 13}, jit.Config{CacheDir: dir})
	if k6, err := c6.Compile(req); err != nil || k6.Cached {
		t.Fatalf("truncated entry: %v", err)
	}
	assertNoTempFiles(t, dir)
}

func TestEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(jit.EnvCacheDir, dir)
	t.Setenv(jit.EnvPrintCompilerCommand, "1")
	c, err := jit.New(&fakeBackend{major: 13}, jit.Config{})
	if err != nil || c.Dir() != dir {
		t.Fatalf("dir %q, %v", c.Dir(), err)
	}
	t.Setenv(jit.EnvCacheDir, "")
	c, err = jit.New(&fakeBackend{major: 13}, jit.Config{})
	if err != nil || !strings.HasSuffix(c.Dir(), filepath.Join("fireflyer", "jit")) {
		t.Fatalf("default dir %q, %v", c.Dir(), err)
	}
}

func TestCompileErrors(t *testing.T) {
	c, _ := jit.New(&fakeBackend{major: 13}, jit.Config{CacheDir: t.TempDir()})
	bad := req
	bad.Source.Code = "#error boom"
	_, err := c.Compile(bad)
	var ce *cuda.Error
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "error: boom") || !strings.Contains(err.Error(), "k<4>") {
		t.Fatalf("compile error %v", err)
	}
	for name, r := range map[string]jit.Request{
		"Source.Code":   {Instance: req.Instance, Arch: "sm_90a"},
		"Instance.Name": {Source: req.Source, Instance: jit.Instance{Name: "9k"}, Arch: "sm_90a"},
		"Arch":          {Source: req.Source, Instance: req.Instance, Arch: "90a"},
		"Instance:":     {Source: req.Source, Instance: jit.Instance{Name: "k", Args: []string{""}}, Arch: "sm_90a"},
	} {
		if _, err := c.Compile(r); !errors.Is(err, jit.ErrRequest) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := jit.New(nil, jit.Config{}); !errors.Is(err, jit.ErrRequest) {
		t.Errorf("nil backend: %v", err)
	}
}

// TestConcurrentCompileOnce: goroutines asking for one key share one
// compilation.
func TestConcurrentCompileOnce(t *testing.T) {
	b := &fakeBackend{major: 13, delay: 20 * time.Millisecond}
	c, _ := jit.New(b, jit.Config{CacheDir: t.TempDir()})
	var wg sync.WaitGroup
	keys := make([]string, 16)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := c.Compile(req)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = k.Key
		}()
	}
	wg.Wait()
	if b.calls.Load() != 1 {
		t.Errorf("%d compilations, want 1", b.calls.Load())
	}
	if keys[0] == "" || slices.ContainsFunc(keys, func(k string) bool { return k != keys[0] }) {
		t.Errorf("keys differ: %v", keys)
	}
}

// TestRacingWriters: separate compilers (as separate ranks would) and
// separate processes write the same key at once while a reader checks that
// every read sees no file or a whole one.
func TestRacingWriters(t *testing.T) {
	dir := t.TempDir()
	path := ""
	stop := make(chan struct{})
	var bad atomic.Int32
	var reads atomic.Int32
	readerDone := make(chan struct{})
	k0 := jit.Key(req, 13, 0)
	c0, _ := jit.New(&fakeBackend{major: 13}, jit.Config{CacheDir: dir})
	path = c0.Path("k", k0)
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			data, err := os.ReadFile(path)
			if err == nil {
				reads.Add(1)
				if !jit.ValidEntry(data) {
					bad.Add(1)
				}
			}
		}
	}()
	// Goroutines with their own compilers: each compiles and writes.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				c, _ := jit.New(&fakeBackend{major: 13}, jit.Config{CacheDir: dir})
				if _, err := c.Compile(req); err != nil {
					t.Error(err)
				}
				os.Remove(path) // force the next compiler to write again
			}
		}()
	}
	// Processes: the test binary re-run as a helper that rewrites the entry.
	var procs []*exec.Cmd
	for range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "JIT_RACE_HELPER_DIR="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}
	wg.Wait()
	for _, p := range procs {
		if err := p.Wait(); err != nil {
			t.Errorf("helper process: %v", err)
		}
	}
	close(stop)
	<-readerDone
	if bad.Load() != 0 {
		t.Fatalf("%d of %d reads saw a partial or corrupt entry", bad.Load(), reads.Load())
	}
	// Leave one entry and check it.
	c, _ := jit.New(&fakeBackend{major: 13}, jit.Config{CacheDir: dir})
	if _, err := c.Compile(req); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || !jit.ValidEntry(data) {
		t.Fatalf("final entry: %v", err)
	}
	assertNoTempFiles(t, dir)
	t.Logf("%d whole reads during the race", reads.Load())
}

// raceHelper runs in a child process: it compiles req into dir 20 times
// with fresh compilers, each writing the entry anew.
func raceHelper(dir string) int {
	for range 20 {
		c, err := jit.New(&fakeBackend{major: 13}, jit.Config{CacheDir: dir})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		k, err := c.Compile(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		os.Remove(k.Path)
	}
	return 0
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	p := filepath.Join(dir, "f")
	if err := jit.WriteAtomic(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := jit.WriteAtomic(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("content %q", b)
	}
	assertNoTempFiles(t, dir)
	if err := jit.WriteAtomic(filepath.Join(p, "under-a-file"), []byte("x")); err == nil {
		t.Error("writing under a regular file succeeded")
	}
}

// TestLoadThroughFakeDriver runs the whole path: fake NVRTC compiles, the
// cache stores, the fake driver loads the module and finds the lowered name.
func TestLoadThroughFakeDriver(t *testing.T) {
	f := cudatest.New()
	f.Kernels[cudatest.LoweredName("k<4>")] = cudatest.Kernel{}
	n := f.NVRTC(t)
	_, ctx := f.Open(t)
	c, _ := jit.New(n, jit.Config{CacheDir: t.TempDir()})
	r := req
	r.Arch = "" // from the device: sm_90a
	fn, err := c.Load(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	fn2, err := c.Load(ctx, r)
	if err != nil || fn2 != fn {
		t.Fatalf("second Load: %v (same function: %v)", err, fn2 == fn)
	}
	if fn.Name() != "_fake_k_4" || f.Calls("cuModuleLoadData") != 1 {
		t.Errorf("name %q, %d module loads", fn.Name(), f.Calls("cuModuleLoadData"))
	}
	if got := f.Compiles(); len(got) != 1 || !strings.HasPrefix(got[0], "--gpu-architecture=sm_90a") {
		t.Errorf("compiles %v", got)
	}
	if err := ctx.Launch(fn, cuda.LaunchConfig{Grid: cuda.Dim3{X: 1}, Block: cuda.Dim3{X: 1}}, new(cuda.Args).Ptr(0)); err != nil {
		t.Fatal(err)
	}
}
