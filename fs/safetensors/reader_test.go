package safetensors_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/errorfs"
	"github.com/fireflyer-go/fireflyer/fs/safetensors"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// TestReaderIntoRegisteredBuffers reads every tensor, and byte ranges of
// them, straight into registered buffers on every backend, with chunks
// small enough that each read is several ring I/Os.
func TestReaderIntoRegisteredBuffers(t *testing.T) {
	entries := sample(t)
	for _, be := range []string{"mem", "posix", "uring"} {
		t.Run(be, func(t *testing.T) {
			c, err := fs.Open(context.Background(), t.TempDir(), fs.WithBackend(be))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			if err := safetensors.Write(ctx, c, "m.safetensors", entries, &safetensors.Options{Metadata: map[string]string{"k": "v"}}); err != nil {
				t.Fatal(err)
			}
			r, err := safetensors.OpenReader(ctx, c, "m.safetensors", &safetensors.Options{Chunk: 8, Depth: 3})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if len(r.Names()) != len(entries) || r.Metadata()["k"] != "v" {
				t.Fatalf("names %v, metadata %v", r.Names(), r.Metadata())
			}
			for _, e := range entries {
				got, buf, err := r.ReadTensor(ctx, e.Name)
				if err != nil {
					t.Fatalf("%s: %v", e.Name, err)
				}
				if got.DType != e.Tensor.DType || !equalInts(got.Shape, e.Tensor.Shape) || !bytes.Equal(got.Data, e.Tensor.Data) {
					t.Fatalf("%s: got %v %v %x, want %v %v %x", e.Name, got.DType, got.Shape, got.Data, e.Tensor.DType, e.Tensor.Shape, e.Tensor.Data)
				}
				if len(got.Data) > 0 && &got.Data[0] != &buf.Bytes()[0] {
					t.Fatalf("%s: tensor data does not alias the registered buffer", e.Name)
				}
				buf.Close()
			}
			// A byte range of the F32 tensor (60 bytes) into the middle of a
			// shared buffer, leaving the bytes around it alone.
			whole := entries[0].Tensor.Data
			buf, _ := c.NewBuffer(128, fs.BufferOpts{})
			defer buf.Close()
			for i := range buf.Bytes() {
				buf.Bytes()[i] = 0xee
			}
			reg, _ := buf.Region(40, 30)
			if err := r.ReadInto(ctx, "w.f32", 17, reg); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(reg.Bytes(), whole[17:47]) || buf.Bytes()[39] != 0xee || buf.Bytes()[70] != 0xee {
				t.Fatalf("range read: % x", buf.Bytes()[36:74])
			}
			tooFar, _ := buf.Region(0, 44)
			if err := r.ReadInto(ctx, "w.f32", 17, tooFar); !errors.Is(err, fs.ErrRange) {
				t.Fatalf("range past the tensor: %v, want fs.ErrRange", err)
			}
			if err := r.ReadInto(ctx, "w.f32", -1, reg); !errors.Is(err, fs.ErrRange) {
				t.Fatalf("negative offset: %v, want fs.ErrRange", err)
			}
			if err := r.ReadInto(ctx, "nope", 0, reg); !errors.Is(err, safetensors.ErrNotFound) {
				t.Fatalf("missing tensor: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestReaderFaults: short reads are retried, an EIO surfaces with its
// errno, and the Reader still works afterwards.
func TestReaderFaults(t *testing.T) {
	mem, _ := fs.NewBackend("mem", fs.BackendOpts{})
	efs := errorfs.Wrap(mem, errorfs.Options{Seed: 5})
	c, _ := fs.Open(context.Background(), "", fs.WithBackendValue(efs))
	defer c.Close()
	ctx := context.Background()
	entries := sample(t)
	if err := safetensors.Write(ctx, c, "m", entries, nil); err != nil {
		t.Fatal(err)
	}
	r, err := safetensors.OpenReader(ctx, c, "m", &safetensors.Options{Chunk: 16, Depth: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	efs.SetRules(errorfs.Rule{Op: errorfs.Reads, Prob: 0.5, Inject: errorfs.Injection{Short: true}})
	got, buf, err := r.ReadTensor(ctx, "w.f32")
	if err != nil || !bytes.Equal(got.Data, entries[0].Tensor.Data) {
		t.Fatalf("with short reads: %v", err)
	}
	buf.Close()
	efs.SetRules(errorfs.Rule{Op: errorfs.Reads, Nth: 2, Inject: errorfs.Injection{Err: syscall.EIO}})
	if _, _, err := r.ReadTensor(ctx, "w.f32"); !errors.Is(err, syscall.EIO) {
		t.Fatalf("EIO: %v", err)
	}
	efs.SetRules()
	got, buf, err = r.ReadTensor(ctx, "idx.i64")
	if err != nil || !bytes.Equal(got.Data, entries[5].Tensor.Data) {
		t.Fatalf("after a failed read: %v", err)
	}
	buf.Close()
}

// TestReaderTruncated: a file cut inside its data section is refused at
// open with ErrTruncated, before any tensor is read.
func TestReaderTruncated(t *testing.T) {
	dir := t.TempDir()
	c, _ := fs.Open(context.Background(), dir, fs.WithBackend("posix"))
	defer c.Close()
	ctx := context.Background()
	if err := safetensors.Write(ctx, c, "m", sample(t), nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "m")
	st, _ := os.Stat(p)
	os.Truncate(p, st.Size()-4)
	if r, err := safetensors.OpenReader(ctx, c, "m", nil); !errors.Is(err, safetensors.ErrTruncated) {
		if r != nil {
			r.Close()
		}
		t.Fatalf("OpenReader of a cut file: %v, want ErrTruncated", err)
	}
}

// TestAtomicWriteENOSPCLeavesNoTmp: a disk that fills during an Atomic
// write leaves neither NAME.tmp nor a new NAME, and keeps the old NAME.
func TestAtomicWriteENOSPCLeavesNoTmp(t *testing.T) {
	dir := t.TempDir()
	be, err := fs.NewBackend("posix", fs.BackendOpts{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	efs := errorfs.Wrap(be, errorfs.Options{})
	c, err := fs.Open(context.Background(), dir, fs.WithBackendValue(efs))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := safetensors.Write(ctx, c, "ckpt", sample(t), &safetensors.Options{Atomic: true}); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(filepath.Join(dir, "ckpt"))
	efs.SetRules(errorfs.Rule{Op: errorfs.Writes, Path: "*.tmp", Off: 64, Len: 1 << 30, Inject: errorfs.Injection{Err: syscall.ENOSPC}})
	err = safetensors.Write(ctx, c, "ckpt", sample(t)[:3], &safetensors.Options{Atomic: true, Chunk: 64})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write on a full disk: %v, want ENOSPC", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ckpt.tmp")); !os.IsNotExist(err) {
		t.Fatalf("ckpt.tmp left behind after ENOSPC: %v", err)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "ckpt")); !bytes.Equal(now, old) {
		t.Fatal("the previous checkpoint changed")
	}
}

// TestReaderMisuse: a nil Client, an already-cancelled context and a closed
// Reader give errors.Is-able errors on every backend (the mem and io_uring
// backends complete I/O inline or at once, so a done context must be checked
// before the I/O, not left to the reaping loop); nothing panics.
func TestReaderMisuse(t *testing.T) {
	ctx := context.Background()
	if _, err := safetensors.OpenReader(ctx, nil, "x.safetensors", nil); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("OpenReader(nil client): err %v; want fs.ErrInvalid", err)
	}
	if _, err := safetensors.Open(ctx, nil, "x.safetensors", nil); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Open(nil client): err %v; want fs.ErrInvalid", err)
	}
	x, _ := tensor.FromSlice([]float32{1, 2, 3, 4}, 2, 2)
	entries := []safetensors.Entry{{Name: "x", Tensor: x}}
	if err := safetensors.Write(ctx, nil, "x.safetensors", entries, &safetensors.Options{Atomic: true}); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Write(nil client): err %v; want fs.ErrInvalid", err)
	}
	for _, backend := range []string{"mem", "posix", "uring"} {
		t.Run(backend, func(t *testing.T) {
			c, err := fs.Open(ctx, t.TempDir(), fs.WithBackend(backend))
			if err != nil {
				t.Skip(err)
			}
			defer c.Close()
			if err := safetensors.Write(ctx, c, "x.safetensors", entries, nil); err != nil {
				t.Fatal(err)
			}
			r, err := safetensors.OpenReader(ctx, c, "x.safetensors", nil)
			if err != nil {
				t.Fatal(err)
			}
			buf, err := c.NewBuffer(4096, fs.BufferOpts{})
			if err != nil {
				t.Fatal(err)
			}
			defer buf.Close()
			reg, _ := buf.Region(0, 16)
			done, cancel := context.WithCancel(ctx)
			cancel()
			if err := r.ReadInto(done, "x", 0, reg); !errors.Is(err, context.Canceled) {
				t.Errorf("ReadInto(cancelled): err %v; want context.Canceled", err)
			}
			if _, _, err := r.ReadTensor(done, "x"); !errors.Is(err, context.Canceled) {
				t.Errorf("ReadTensor(cancelled): err %v; want context.Canceled", err)
			}
			if err := r.ReadInto(ctx, "x", 0, reg); err != nil {
				t.Fatalf("ReadInto after a cancelled call: %v", err)
			}
			if got := reg.Bytes()[4:8]; !bytes.Equal(got, x.Data[4:8]) {
				t.Errorf("ReadInto read % x, want % x", got, x.Data[4:8])
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if err := r.ReadInto(ctx, "x", 0, reg); !errors.Is(err, fs.ErrClosed) {
				t.Errorf("ReadInto(closed reader): err %v; want fs.ErrClosed", err)
			}
			if _, _, err := r.ReadTensor(ctx, "x"); !errors.Is(err, fs.ErrClosed) {
				t.Errorf("ReadTensor(closed reader): err %v; want fs.ErrClosed", err)
			}
		})
	}
}
