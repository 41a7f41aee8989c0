package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/fireflyer-go/fireflyer/cmd/fireflyer/internal/demo"
	"github.com/fireflyer-go/fireflyer/cmd/fireflyer/internal/dsv3"
	pipesvg "github.com/fireflyer-go/fireflyer/pipeline/svg"
)

func init() {
	register(command{name: "demo", summary: "run one DeepSeek-V3 (or --model v3.2) MoE decode step through every package and check it", run: runDemo})
}

func runDemo(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "demo [flags]", stderr)
	var o demo.Options
	fs.StringVar(&o.Model, "model", "", "v3 or v3.2 (DeepSeek-V3.2: lightning indexer, top-k, sparse MLA over the FP8 cache); default v3, or what --checkpoint/--config says")
	fs.IntVar(&o.Scale, "scale", 8, "shrink widths and expert counts by this factor (1 = DeepSeek-V3 full size)")
	fs.IntVar(&o.Batch, "batch", 64, "sequences decoded in the step")
	fs.IntVar(&o.Ranks, "ranks", 8, "expert-parallel ranks")
	fs.StringVar(&o.Transport, "transport", "inproc", "ep transport: inproc, tcp, unix or ucx (tcp/unix/ucx start the rank processes; ucx honours UCX_TLS)")
	fs.IntVar(&o.Prefix, "prefix", 256, "longest prefix in the KV cache (each sequence holds prefix/2 … prefix tokens; v3.2 default: 2·index_topk)")
	seed := fs.Uint64("seed", 1, "seed of the generated weights and inputs")
	fs.IntVar(&o.Layer, "layer", 0, "MoE layer to run (0: first_k_dense_replace, i.e. 3)")
	fs.StringVar(&o.Dir, "dir", "", "write the generated checkpoint here and keep it (default: a temporary directory)")
	fs.StringVar(&o.Checkpoint, "checkpoint", "", "read a DeepSeek-V3 checkpoint directory (config.json + safetensors shards) instead of generating one")
	cfgPath := fs.String("config", "", "model config.json (default: DeepSeek-V3's published config, shipped in the binary)")
	fs.StringVar(&o.FSBackend, "fs-backend", "auto", "fs backend for checkpoint I/O: auto, uring, posix, hf3fs or mem")
	asJSON := fs.Bool("json", false, "print one JSON object instead of the table")
	svg := fs.String("svg", "", "draw the simulated DualPipe schedule to this SVG file ('-': to standard output instead of the table)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long (with --transport tcp|unix|ucx also every rank process: ranks still running then are killed)")
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "fireflyer demo: --timeout %v must be positive\n", *timeout)
		return exitUsage
	}
	if o.Checkpoint != "" {
		var conflict string
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "scale" || f.Name == "dir" {
				conflict = f.Name
			}
		})
		if conflict != "" {
			fmt.Fprintf(stderr, "fireflyer demo: --%s applies to a generated checkpoint; --checkpoint reads one as it is\n", conflict)
			return exitUsage
		}
	}
	// Options take 0 as "the default"; on the command line 0 is a mistake.
	for _, f := range []struct {
		name string
		v    int
	}{{"--scale", o.Scale}, {"--batch", o.Batch}, {"--ranks", o.Ranks}, {"--prefix", o.Prefix}} {
		if f.v < 1 {
			fmt.Fprintf(stderr, "fireflyer demo: %s %d must be ≥ 1\n", f.name, f.v)
			return exitUsage
		}
	}
	// Output and input paths are checked before the run, which takes
	// seconds to minutes.
	if err := checkOutFile("svg", *svg); err != nil {
		fmt.Fprintf(stderr, "fireflyer demo: %v\n", err)
		return exitUsage
	}
	if *svg == "-" && *asJSON {
		fmt.Fprintln(stderr, "fireflyer demo: --svg - writes the picture to standard output; drop --json")
		return exitUsage
	}
	if o.Checkpoint != "" {
		if fi, err := os.Stat(o.Checkpoint); err == nil && !fi.IsDir() {
			fmt.Fprintf(stderr, "fireflyer demo: --checkpoint %s: is a file, want a checkpoint directory (config.json and safetensors shards)\n", o.Checkpoint)
			return exitUsage
		}
	}
	if o.Model != "" && o.Model != "v3" && o.Model != "v3.2" {
		fmt.Fprintf(stderr, "fireflyer demo: --model %q must be v3 or v3.2\n", o.Model)
		return exitUsage
	}
	prefixSet := false
	fs.Visit(func(f *flag.Flag) { prefixSet = prefixSet || f.Name == "prefix" })
	if !prefixSet {
		o.Prefix = 0 // the model's default (256, or 2·index_topk for v3.2)
	}
	o.Seed = *seed
	if *cfgPath != "" {
		c, err := dsv3.LoadConfig(*cfgPath)
		if err != nil {
			fmt.Fprintln(stderr, "fireflyer demo: --config:", err)
			return exitUsage
		}
		o.Config = &c
	}
	o.Progress = demoProgress(stderr)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	res, err := demo.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "fireflyer demo:", err)
		if errors.Is(err, demo.ErrOptions) || errors.Is(err, dsv3.ErrConfig) || errors.Is(err, demo.ErrCheckpoint) {
			return exitUsage
		}
		return exitFail
	}
	svgOpts := pipesvg.Options{Report: res.Report(),
		Title: fmt.Sprintf("DualPipe, 16 stages, 32 micro-batches, F=%d µs (measured)", res.Pipeline.F)}
	if *svg == "-" {
		// The picture replaces the table on standard output (as eplb's and
		// schedule's --svg -; it used to create a file named "-").
		if err := pipesvg.Write(stdout, res.Schedule(), svgOpts); err != nil {
			fmt.Fprintln(stderr, "fireflyer demo: --svg:", err)
			return exitFail
		}
		if !res.OK {
			// The failed check's readings are diagnostics here.
			demo.PrintTable(stderr, res)
			return exitFail
		}
		return exitOK
	}
	if *svg != "" {
		f, err := os.Create(*svg)
		if err == nil {
			err = pipesvg.Write(f, res.Schedule(), svgOpts)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(stderr, "fireflyer demo: --svg:", err)
			return exitFail
		}
	}
	if *asJSON {
		if c := writeJSON(stdout, stderr, "demo", res); c != exitOK {
			return c
		}
	} else {
		demo.PrintTable(stdout, res)
	}
	if !res.OK {
		return exitFail
	}
	return exitOK
}

// demoProgress returns a checkpoint-I/O progress callback drawing a bar on
// stderr when it is a terminal, else nil.
func demoProgress(stderr io.Writer) func(stage string, done, total int64) {
	if !isTerminal(stderr) {
		return nil
	}
	var mu sync.Mutex
	bars := map[string]*progressbar.ProgressBar{}
	return func(stage string, done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		b := bars[stage]
		if b == nil {
			b = progressbar.NewOptions64(total, progressbar.OptionSetWriter(stderr),
				progressbar.OptionSetDescription("checkpoint "+stage), progressbar.OptionClearOnFinish())
			bars[stage] = b
		}
		b.Set64(done)
		if done >= total {
			b.Finish()
		}
	}
}
