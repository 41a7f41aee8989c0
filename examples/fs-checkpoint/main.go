// Command fs-checkpoint writes a model checkpoint of FP8 weights, their F32
// block scales and BF16 router weights as one safetensors file through the
// fs client (write rings over registered buffers, fsync, atomic rename),
// reads it back through read rings into one registered buffer, and checks
// every tensor's SHA-256.
//
//	go run ./examples/fs-checkpoint -dir /tmp/ckpt -layers 4
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/safetensors"
	"github.com/fireflyer-go/fireflyer/tensor"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory for the checkpoint")
	layers := flag.Int("layers", 4, "layers (each: a 1024x1024 FP8 weight, its 8x8 scales, a 64x1024 BF16 router)")
	backend := flag.String("backend", "auto", "fs backend: auto, uring, posix")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *dir, *layers, *backend); err != nil {
		fmt.Fprintln(os.Stderr, "fs-checkpoint:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, dir string, layers int, backend string) error {
	c, err := fs.Open(ctx, dir, fs.WithBackend(backend))
	if err != nil {
		return err
	}
	defer c.Close()

	rng := rand.New(rand.NewPCG(1, 2))
	wr := safetensors.NewWriter(c, "checkpoint.safetensors", &safetensors.Options{Atomic: true})
	wr.SetMetadata("step", "1000")
	sums := map[string][32]byte{}
	add := func(name string, t *tensor.Tensor) error {
		sums[name] = sha256.Sum256(t.Data)
		return wr.Add(name, t)
	}
	var bytes int
	for l := range layers {
		wf := make([]float32, 1024*1024)
		for i := range wf {
			wf[i] = float32(rng.NormFloat64())
		}
		w8, _ := tensor.New(tensor.E4M3T, 1024, 1024)
		tensor.EncodeE4M3(w8.E4M3s(), wf)
		scale, _ := tensor.New(tensor.F32, 8, 8)
		for i := range scale.F32() {
			scale.F32()[i] = 1 / (1 + float32(i))
		}
		router, _ := tensor.New(tensor.BF16T, 64, 1024)
		tensor.EncodeBF16(router.BF16s(), wf[:64*1024])
		p := fmt.Sprintf("model.layers.%d.", l)
		for _, e := range []struct {
			n string
			t *tensor.Tensor
		}{{p + "mlp.weight", w8}, {p + "mlp.weight_scale_inv", scale}, {p + "gate.weight", router}} {
			if err := add(e.n, e.t); err != nil {
				return err
			}
			bytes += len(e.t.Data)
		}
	}
	start := time.Now()
	if err := wr.Close(ctx); err != nil {
		return err
	}
	wt := time.Since(start)

	start = time.Now()
	f, err := safetensors.Open(ctx, c, "checkpoint.safetensors", nil)
	if err != nil {
		return err
	}
	defer f.Close()
	rt := time.Since(start)
	for name, want := range sums {
		t, err := f.Tensor(name)
		if err != nil {
			return err
		}
		if sha256.Sum256(t.Data) != want {
			return fmt.Errorf("tensor %s: checksum mismatch", name)
		}
	}
	fmt.Fprintf(w, "backend %s: wrote %d tensors (%.1f MiB) in %v, read back in %v, %d checksums OK, step %s\n",
		c.Backend(), len(sums), float64(bytes)/(1<<20), wt.Round(time.Millisecond), rt.Round(time.Millisecond), len(sums), f.Metadata()["step"])
	return nil
}
