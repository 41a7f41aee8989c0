package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/errorfs"
)

func TestCheckpointRoundTrip(t *testing.T) {
	for _, be := range []string{"auto", "posix"} {
		t.Run(be, func(t *testing.T) {
			dir := t.TempDir()
			var out bytes.Buffer
			if err := run(context.Background(), &out, config{dir: dir, layers: 2, step: 1000, writers: 3, backend: be}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "wrote 6 tensors") || !strings.Contains(out.String(), "6 checksums OK, step 1000") {
				t.Fatalf("output %q", out.String())
			}
			if _, err := os.Stat(filepath.Join(dir, "checkpoint.safetensors.tmp")); !os.IsNotExist(err) {
				t.Fatal("temporary file left behind")
			}
		})
	}
}

// TestCrashBeforeRename kills a process that is saving step 2000 after the
// new file is fsynced but before the rename, then checks that step 1000's
// checkpoint still loads with every checksum.
func TestCrashBeforeRename(t *testing.T) {
	if dir := os.Getenv("FS_CHECKPOINT_CRASH_DIR"); dir != "" {
		run(context.Background(), os.Stdout, config{dir: dir, layers: 2, step: 2000, writers: 3, backend: "auto",
			beforeRename: func() { os.Exit(3) }})
		os.Exit(0) // not reached
	}
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), &out, config{dir: dir, layers: 2, step: 1000, writers: 3, backend: "auto"}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashBeforeRename$")
	cmd.Env = append(os.Environ(), "FS_CHECKPOINT_CRASH_DIR="+dir)
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("crashing child: %v, want exit status 3", err)
	}
	if st, err := os.Stat(filepath.Join(dir, "checkpoint.safetensors.tmp")); err != nil || st.Size() == 0 {
		t.Fatalf("the crashed save left no new file: %v", err)
	}
	c, err := openClient(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	step, n, err := load(context.Background(), c)
	if err != nil || step != "1000" || n != 6 {
		t.Fatalf("after the crash: step %q, %d tensors, %v; want the intact step 1000 checkpoint", step, n, err)
	}
	// The next save replaces the torn temporary file and the checkpoint.
	out.Reset()
	if err := run(context.Background(), &out, config{dir: dir, layers: 2, step: 3000, writers: 2, backend: "auto"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "6 checksums OK, step 3000") {
		t.Fatalf("save after crash: %q", out.String())
	}
}

func TestChecksumCatchesCorruption(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), &out, config{dir: dir, layers: 1, step: 1, writers: 2, backend: "posix"}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "checkpoint.safetensors")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-10] ^= 0xff // flip bits in the last tensor's data
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := openClient(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := load(context.Background(), c); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("load of a corrupted checkpoint: %v, want a checksum mismatch", err)
	}
}

// openClient opens an fs client on dir with the default backend.
func openClient(dir string) (*fs.Client, error) { return fs.Open(context.Background(), dir) }

// TestDiskFullCleansUp: the disk fills during a save (the header's write
// comes back short, writing the rest fails with ENOSPC). The save must
// fail naming the errno, remove checkpoint.safetensors.tmp, and keep the
// previous checkpoint loadable.
func TestDiskFullCleansUp(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), &out, config{dir: dir, layers: 1, step: 1, writers: 1, backend: "posix"}); err != nil {
		t.Fatal(err)
	}
	be, err := fs.NewBackend("posix", fs.BackendOpts{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	header := 0 // length of the header write, once it has been cut short
	efs := errorfs.Wrap(be, errorfs.Options{Rules: []errorfs.Rule{
		{Op: errorfs.Writes, Path: "*.tmp", Inject: errorfs.Injection{Err: syscall.ENOSPC}, Match: func(i errorfs.Info) bool {
			mu.Lock()
			defer mu.Unlock()
			return header > 0 && i.Off == int64(header/2) && i.Len == header-header/2
		}},
		{Op: errorfs.Writes, Path: "*.tmp", Inject: errorfs.Injection{Short: true}, Match: func(i errorfs.Info) bool {
			mu.Lock()
			defer mu.Unlock()
			if i.Off == 0 && header == 0 {
				header = i.Len
				return true
			}
			return false
		}},
	}})
	out.Reset()
	err = run(context.Background(), &out, config{dir: dir, layers: 1, step: 2, writers: 1, backend: "posix", fsOpts: []fs.Option{fs.WithBackendValue(efs)}})
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "short write") {
		t.Fatalf("save on a full disk: %v, want a short write then ENOSPC, with the errno", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoint.safetensors.tmp")); !os.IsNotExist(err) {
		t.Fatalf("checkpoint.safetensors.tmp left behind: %v", err)
	}
	c, err := openClient(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if step, n, err := load(context.Background(), c); err != nil || step != "1" || n != 3 {
		t.Fatalf("previous checkpoint: step %q, %d tensors, %v", step, n, err)
	}
}

// TestBadFlags: a layer count below 1 or a negative writer count is an
// error, not a silently empty checkpoint written over the previous one.
func TestBadFlags(t *testing.T) {
	for _, cfg := range []config{{layers: 0, writers: 1}, {layers: -1, writers: 1}, {layers: 1, writers: -2}} {
		cfg.dir, cfg.backend, cfg.step = t.TempDir(), "posix", 1
		var out bytes.Buffer
		if err := run(context.Background(), &out, cfg); err == nil {
			t.Errorf("layers %d writers %d: no error (output %q)", cfg.layers, cfg.writers, out.String())
		}
		if _, err := os.Stat(filepath.Join(cfg.dir, "checkpoint.safetensors")); !os.IsNotExist(err) {
			t.Errorf("layers %d writers %d: a checkpoint was written", cfg.layers, cfg.writers)
		}
	}
}
