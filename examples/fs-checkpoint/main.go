// Command fs-checkpoint saves a model checkpoint of FP8 weights, their F32
// block scales and BF16 router weights as one safetensors file through the
// fs client, the way 3FS is used for checkpoints: the tensors are written in
// parallel by several goroutines, each through its own write ring and
// registered buffer, into name.tmp; the file is fsynced, then atomically
// renamed over the previous checkpoint (and the directory fsynced). Every
// tensor's SHA-256 goes into the header's metadata and is verified on load,
// so a torn or foreign file is caught; a crash before the rename leaves the
// previous checkpoint intact.
//
//	go run ./examples/fs-checkpoint -dir /tmp/ckpt -layers 4
//	go run ./examples/fs-checkpoint -dir /hf3fs/cluster/ckpt   # hf3fs, picked automatically
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/safetensors"
	"github.com/fireflyer-go/fireflyer/tensor"
)

const (
	ckptName = "checkpoint.safetensors"
	chunk    = 1 << 20 // bytes per I/O
	depth    = 8       // I/Os in flight per ring
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory for the checkpoint")
	layers := flag.Int("layers", 4, "layers (each: a 1024x1024 FP8 weight, its 8x8 scales, a 64x1024 BF16 router)")
	step := flag.Int("step", 1000, "training step stored in the checkpoint (seeds the weights)")
	writers := flag.Int("writers", 4, "goroutines writing tensors in parallel, one ring each")
	backend := flag.String("backend", "auto", "fs backend: auto, hf3fs, uring, posix")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, config{dir: *dir, layers: *layers, step: *step, writers: *writers, backend: *backend}); err != nil {
		fmt.Fprintln(os.Stderr, "fs-checkpoint:", err)
		os.Exit(1)
	}
}

type config struct {
	dir          string
	layers, step int
	writers      int
	backend      string
	// beforeRename runs after the new file is written and fsynced, just
	// before the rename; tests crash the process there.
	beforeRename func()
	// fsOpts are extra options for fs.Open (tests inject faults).
	fsOpts []fs.Option
}

func run(ctx context.Context, w io.Writer, cfg config) error {
	if cfg.layers < 1 || cfg.writers < 0 {
		return fmt.Errorf("-layers %d must be ≥ 1 and -writers %d ≥ 0 (0 means 1)", cfg.layers, cfg.writers)
	}
	c, err := fs.Open(ctx, cfg.dir, append([]fs.Option{fs.WithBackend(cfg.backend)}, cfg.fsOpts...)...)
	if err != nil {
		return err
	}
	defer c.Close()
	entries := model(cfg.layers, cfg.step)
	start := time.Now()
	n, err := save(ctx, c, entries, cfg)
	if err != nil {
		return err
	}
	wt := time.Since(start)
	start = time.Now()
	step, count, err := load(ctx, c)
	if err != nil {
		return err
	}
	rt := time.Since(start)
	fmt.Fprintf(w, "backend %s: wrote %d tensors (%.1f MiB) with %d writers in %v, read back in %v, %d checksums OK, step %s\n",
		c.Backend(), len(entries), float64(n)/(1<<20), max(1, cfg.writers), wt.Round(time.Millisecond), rt.Round(time.Millisecond), count, step)
	return nil
}

// model returns the checkpoint's tensors, seeded by step.
func model(layers, step int) []safetensors.Entry {
	rng := rand.New(rand.NewPCG(uint64(step), 2))
	var out []safetensors.Entry
	for l := range layers {
		wf := make([]float32, 1024*1024)
		for i := range wf {
			wf[i] = float32(rng.NormFloat64())
		}
		w8, _ := tensor.New(tensor.E4M3T, 1024, 1024)
		tensor.EncodeE4M3(w8.E4M3s(), wf)
		scale, _ := tensor.New(tensor.F32, 8, 8)
		for i := range scale.F32() {
			scale.F32()[i] = 1 / (1 + float32(i+step))
		}
		router, _ := tensor.New(tensor.BF16T, 64, 1024)
		tensor.EncodeBF16(router.BF16s(), wf[:64*1024])
		p := fmt.Sprintf("model.layers.%d.", l)
		out = append(out,
			safetensors.Entry{Name: p + "mlp.weight", Tensor: w8},
			safetensors.Entry{Name: p + "mlp.weight_scale_inv", Tensor: scale},
			safetensors.Entry{Name: p + "gate.weight", Tensor: router})
	}
	return out
}

// save writes entries to ckptName.tmp in parallel, fsyncs it and renames it
// over ckptName. It returns the file size.
func save(ctx context.Context, c *fs.Client, entries []safetensors.Entry, cfg config) (int64, error) {
	meta := map[string]string{"step": fmt.Sprint(cfg.step)}
	for _, e := range entries {
		sum := sha256.Sum256(e.Tensor.Data)
		meta["sha256:"+e.Name] = hex.EncodeToString(sum[:])
	}
	header, order, err := safetensors.EncodeHeader(entries, meta)
	if err != nil {
		return 0, err
	}
	tmp := ckptName + ".tmp"
	f, err := c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	renamed := false
	defer func() {
		f.Close()
		if !renamed {
			// A failed save (a full disk, say) must not leave a torn
			// temporary file filling the disk for the next one.
			os.Remove(filepath.Join(c.Root(), tmp))
		}
	}()
	// The data section follows the header in the order EncodeHeader chose,
	// with no gaps: each tensor's file offset is known up front, so the
	// writers need no coordination.
	type piece struct {
		off  int64
		data []byte
	}
	pieces := []piece{{0, header}}
	off := int64(len(header))
	for _, e := range order {
		pieces = append(pieces, piece{off, e.Tensor.Data})
		off += int64(len(e.Tensor.Data))
	}
	work := make(chan piece, len(pieces))
	for _, p := range pieces {
		work <- p
	}
	close(work)
	writers := max(1, cfg.writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = writeWorker(ctx, c, f, work, func(p piece) (int64, []byte) { return p.off, p.data })
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	if cfg.beforeRename != nil {
		cfg.beforeRename()
	}
	from, to := filepath.Join(c.Root(), tmp), filepath.Join(c.Root(), ckptName)
	if err := os.Rename(from, to); err != nil {
		return 0, err
	}
	renamed = true
	if d, err := os.Open(c.Root()); err == nil {
		d.Sync()
		d.Close()
	}
	return off, nil
}

// writeWorker drains work through one write ring of depth I/Os of up to
// chunk bytes each.
func writeWorker[T any](ctx context.Context, c *fs.Client, f *fs.File, work <-chan T, split func(T) (int64, []byte)) error {
	buf, err := c.NewBuffer(chunk*depth, fs.BufferOpts{BlockSize: chunk})
	if err != nil {
		return err
	}
	defer buf.Close()
	ring, err := c.NewRing(fs.RingOpts{Entries: depth, Op: fs.Write})
	if err != nil {
		return err
	}
	defer ring.Close()
	out := make([]fs.Completion, depth)
	want := make([]int64, depth)
	at := make([]int64, depth) // file offset of each slot's write
	free := make([]int, 0, depth)
	for i := range depth {
		free = append(free, i)
	}
	inflight := 0
	reap := func(min int) error {
		n, err := ring.Wait(ctx, out, min)
		for _, cp := range out[:n] {
			inflight--
			k := int(cp.Tag)
			free = append(free, k)
			if cp.Err == nil && cp.N < want[k] {
				// A short write (the disk filling up, typically): write
				// the rest, which reports the errno if it fails.
				rest := buf.Bytes()[k*chunk+int(cp.N) : k*chunk+int(want[k])]
				if _, werr := f.WriteAt(rest, at[k]+cp.N); werr != nil {
					cp.Err = fmt.Errorf("short write at offset %d (%d of %d bytes), then: %w", at[k], cp.N, want[k], werr)
				}
			}
			if cp.Err != nil {
				cp.Err = fmt.Errorf("write at offset %d: %w", at[k], cp.Err)
			}
			if cp.Err != nil && err == nil {
				err = cp.Err
			}
		}
		return err
	}
	for item := range work {
		off, data := split(item)
		for len(data) > 0 {
			if len(free) == 0 {
				if err := reap(1); err != nil {
					return err
				}
			}
			k := free[len(free)-1]
			free = free[:len(free)-1]
			n := copy(buf.Bytes()[k*chunk:(k+1)*chunk], data)
			reg, _ := buf.Region(k*chunk, n)
			want[k], at[k] = int64(n), off
			if _, err := ring.Prep(fs.Req{File: f, Off: off, Buf: reg, Tag: uint64(k)}); err != nil {
				return err
			}
			if err := ring.Submit(); err != nil {
				return err
			}
			inflight++
			off += int64(n)
			data = data[n:]
		}
	}
	for inflight > 0 {
		if err := reap(inflight); err != nil {
			return err
		}
	}
	return nil
}

// load reads ckptName's header, then each tensor through read rings
// straight into one registered buffer sized for the largest (no copy), and
// checks it against the SHA-256 in the metadata. It returns the step and
// the tensor count.
func load(ctx context.Context, c *fs.Client) (string, int, error) {
	r, err := safetensors.OpenReader(ctx, c, ckptName, nil)
	if err != nil {
		return "", 0, err
	}
	defer r.Close()
	largest := int64(1)
	for _, ti := range r.Header.Tensors {
		largest = max(largest, ti.End-ti.Begin)
	}
	buf, err := c.NewBuffer(int(largest), fs.BufferOpts{})
	if err != nil {
		return "", 0, err
	}
	defer buf.Close()
	meta := r.Metadata()
	for _, ti := range r.Header.Tensors {
		var data []byte
		if n := int(ti.End - ti.Begin); n > 0 {
			reg, err := buf.Region(0, n)
			if err != nil {
				return "", 0, err
			}
			if err := r.ReadInto(ctx, ti.Name, 0, reg); err != nil {
				return "", 0, err
			}
			data = reg.Bytes()
		}
		sum := sha256.Sum256(data)
		if meta["sha256:"+ti.Name] != hex.EncodeToString(sum[:]) {
			return "", 0, fmt.Errorf("tensor %s: checksum mismatch", ti.Name)
		}
	}
	return meta["step"], len(r.Header.Tensors), nil
}
