package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/fireflyer-go/fireflyer/fs"
)

func init() {
	register(command{name: "fs", summary: "zero-copy file client tools (fs bench: fio-like benchmark)", run: runFS})
}

func runFS(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, "usage: fireflyer fs bench [flags] PATH\n\nverbs:\n  bench   fio-like benchmark of the fs client on one file\n\nRun 'fireflyer fs bench -h' for its flags.")
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch args[0] {
	case "bench":
		return runFSBench(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "fireflyer fs: unknown verb %q (want bench)\n", args[0])
	return exitUsage
}

// benchConfig is the parsed command line of fs bench.
type benchConfig struct {
	Backend string        `json:"backend"`
	RW      string        `json:"rw"`
	BS      int64         `json:"bs"`
	IODepth int           `json:"iodepth"`
	NumJobs int           `json:"numjobs"`
	Batch   int           `json:"batch"`
	Size    int64         `json:"size"`
	Runtime time.Duration `json:"-"`
	Direct  bool          `json:"direct"`
	Wrap    bool          `json:"wrap"`
	Workers int           `json:"workers,omitempty"`
	Seed    uint64        `json:"seed"`
	Path    string        `json:"path"`
}

// benchResult is what fs bench measures; --json prints it.
type benchResult struct {
	Config      benchConfig `json:"config"`
	Backend     string      `json:"backend_used"`
	Note        string      `json:"note,omitempty"`
	RuntimeS    float64     `json:"runtime_s"`
	IOs         int64       `json:"ios"`
	Bytes       int64       `json:"bytes"`
	Errors      int64       `json:"errors"`
	IOPS        float64     `json:"iops"`
	BWMiBs      float64     `json:"bw_mib_s"`
	LatUS       latSummary  `json:"lat_us"`
	EntersPerIO float64     `json:"enters_per_io,omitempty"`
}

type latSummary struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

func runFSBench(args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("fs bench", "fs bench [flags] PATH", stderr)
	var cfg benchConfig
	var bs, size, runtime string
	var asJSON bool
	fl.StringVar(&cfg.Backend, "backend", "auto", "backend: auto, hf3fs, uring, posix or mem (auto picks hf3fs on a 3FS mount)")
	fl.StringVar(&cfg.RW, "rw", "randread", "pattern: read, write, randread or randwrite")
	fl.StringVar(&bs, "bs", "4k", "block size per I/O (k, m, g suffixes are powers of 1024)")
	fl.IntVar(&cfg.IODepth, "iodepth", 64, "I/Os kept in flight (ring entries)")
	fl.IntVar(&cfg.NumJobs, "numjobs", 1, "rings, each driven by its own goroutine with --iodepth I/Os in flight")
	fl.IntVar(&cfg.Batch, "batch", 1, "completions to wait for before refilling the ring (1..iodepth)")
	fl.StringVar(&size, "size", "1G", "file size; the file is created or extended to it first")
	fl.StringVar(&runtime, "runtime", "10s", "how long to run (Go duration, or seconds)")
	fl.BoolVar(&cfg.Direct, "direct", false, "open the file with O_DIRECT (page cache bypassed)")
	fl.BoolVar(&cfg.Wrap, "wrap", false, "do the I/O in memory the benchmark maps itself (a /dev/shm mapping on Linux), registered with Client.WrapBuffer, instead of a Buffer from NewBuffer")
	fl.IntVar(&cfg.Workers, "workers", 0, "posix worker goroutines (0: GOMAXPROCS*4)")
	fl.Uint64Var(&cfg.Seed, "seed", 1, "random offset seed")
	fl.BoolVar(&asJSON, "json", false, "print one JSON object instead of text")
	if code, ok := parseFlags(fl, args); !ok {
		return code
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "fireflyer fs bench: "+format+"\n", a...)
		return exitUsage
	}
	if fl.NArg() != 1 {
		return bad("want exactly one PATH argument, got %d", fl.NArg())
	}
	cfg.Path = fl.Arg(0)
	if cfg.Path == "-" {
		// '-' means standard input everywhere else (shared conventions);
		// it used to create and benchmark a file named "-" here.
		return bad("PATH \"-\": fs bench needs a file to benchmark on, not standard input (write ./- for a file named -)")
	}
	var err error
	if cfg.BS, err = parseSize(bs); err != nil || cfg.BS <= 0 || cfg.BS > 1<<30 {
		return bad("--bs %q: want a size in 1..1G", bs)
	}
	if cfg.Size, err = parseSize(size); err != nil || cfg.Size < cfg.BS {
		return bad("--size %q: want a size >= --bs", size)
	}
	if mt := epMemTotal(); cfg.Backend == "mem" && mt > 0 && cfg.Size > mt/2 {
		// the mem backend holds the whole file in this process's memory
		return bad("--size %q with --backend mem: the file is kept in memory; want at most half of this machine's %.1f GiB", size, float64(mt)/(1<<30))
	}
	if cfg.Runtime, err = parseRuntime(runtime); err != nil || cfg.Runtime <= 0 {
		return bad("--runtime %q: want a positive duration", runtime)
	}
	switch cfg.RW {
	case "read", "write", "randread", "randwrite":
	default:
		return bad("--rw %q: want read, write, randread or randwrite", cfg.RW)
	}
	if cfg.IODepth < 1 || cfg.IODepth > 4096 {
		return bad("--iodepth %d: want 1..4096", cfg.IODepth)
	}
	if cfg.NumJobs < 1 || cfg.NumJobs > 256 {
		return bad("--numjobs %d: want 1..256", cfg.NumJobs)
	}
	if cfg.Batch < 1 || cfg.Batch > cfg.IODepth {
		return bad("--batch %d: want 1..iodepth", cfg.Batch)
	}
	if cfg.Workers < 0 || cfg.Workers > maxBenchWorkers {
		return bad("--workers %d: want 0..%d", cfg.Workers, maxBenchWorkers)
	}
	if int64(cfg.NumJobs)*int64(cfg.IODepth)*cfg.BS > 4<<30 {
		return bad("--numjobs x --iodepth x --bs = %d bytes: want at most 4 GiB of buffers", int64(cfg.NumJobs)*int64(cfg.IODepth)*cfg.BS)
	}
	switch cfg.Backend {
	case "auto", "hf3fs", "uring", "posix", "mem":
	default:
		return bad("--backend %q: want auto, hf3fs, uring, posix or mem", cfg.Backend)
	}
	if cfg.Backend != "mem" {
		if msg := checkBenchPath(cfg.Path, size, cfg.Size); msg != "" {
			return bad("%s", msg)
		}
	}
	var progress benchProgress
	if isTerminal(stderr) {
		progress = newBenchBars(stderr, cfg.RW)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := fsBench(ctx, cfg, progress)
	if progress != nil {
		progress.finish()
	}
	if err != nil {
		if errors.Is(err, fs.ErrAlignment) {
			// name the argument at fault, as for every other usage error
			err = fmt.Errorf("--bs %d with --direct: %w (use a multiple of the file system's O_DIRECT alignment, usually 512 or 4096 bytes)", cfg.BS, err)
		}
		fmt.Fprintf(stderr, "fireflyer fs bench: %v\n", err)
		if errors.Is(err, fs.ErrInvalid) || errors.Is(err, fs.ErrAlignment) {
			return exitUsage
		}
		return exitFail
	}
	if asJSON {
		if c := writeJSON(stdout, stderr, "fs bench", res); c != exitOK {
			return c
		}
	} else {
		printBench(stdout, res)
	}
	if res.Errors > 0 {
		return exitFail
	}
	return exitOK
}

func printBench(w io.Writer, r benchResult) {
	c := r.Config
	fmt.Fprintf(w, "fs bench: backend=%s rw=%s bs=%s iodepth=%d numjobs=%d batch=%d size=%s direct=%v wrap=%v\n",
		r.Backend, c.RW, fmtSize(c.BS), c.IODepth, c.NumJobs, c.Batch, fmtSize(c.Size), c.Direct, c.Wrap)
	if r.Note != "" {
		fmt.Fprintf(w, "  note: %s\n", r.Note)
	}
	op := "read"
	if strings.HasSuffix(c.RW, "write") {
		op = "write"
	}
	fmt.Fprintf(w, "  %s: IOPS=%.0f BW=%.1fMiB/s ios=%d bytes=%s errors=%d runtime=%.2fs\n",
		op, r.IOPS, r.BWMiBs, r.IOs, fmtBytes(r.Bytes), r.Errors, r.RuntimeS)
	l := r.LatUS
	fmt.Fprintf(w, "  lat (usec): min=%.1f avg=%.1f p50=%.1f p90=%.1f p99=%.1f p99.9=%.1f max=%.1f\n",
		l.Min, l.Mean, l.P50, l.P90, l.P99, l.P999, l.Max)
	if r.EntersPerIO > 0 {
		fmt.Fprintf(w, "  io_uring_enter per I/O: %.3f\n", r.EntersPerIO)
	}
}

// maxBenchWorkers bounds --workers: each posix worker is a goroutine, and
// more than a few thousand only add scheduling.
const maxBenchWorkers = 4096

// checkBenchPath checks fs bench's PATH and --size before anything is
// created: PATH must be a regular file or a new name in an existing
// directory, and the bytes still to lay out (size, given as sizeFlag) must fit in the file system's
// free space. It returns the usage message, naming the argument, or "".
func checkBenchPath(path, sizeFlag string, size int64) string {
	dir, _ := splitPath(path)
	var have int64
	if st, err := os.Stat(path); err == nil {
		if st.IsDir() {
			return fmt.Sprintf("PATH %q is a directory; want a file to benchmark on", path)
		}
		if !st.Mode().IsRegular() {
			return fmt.Sprintf("PATH %q is not a regular file (%v); want a file to benchmark on", path, st.Mode().Type())
		}
		have = st.Size()
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Sprintf("PATH %q: %v", path, err)
	} else if dst, err := os.Stat(dir); err != nil {
		return fmt.Sprintf("PATH %q: directory %q does not exist", path, dir)
	} else if !dst.IsDir() {
		return fmt.Sprintf("PATH %q: %q is not a directory", path, dir)
	}
	if free := freeSpace(dir); free >= 0 && size-have > free {
		return fmt.Sprintf("--size %s: laying the file out needs %s more, but the file system holding %s has %s free", sizeFlag, fmtBytes(size-have), dir, fmtBytes(free))
	}
	return ""
}

// benchProgress reports fs bench's progress: the layout (bytes written of
// the total) and the run (fraction of --runtime).
type benchProgress interface {
	layout(done, total int64)
	run(frac float64)
	finish()
}

// benchBars draws benchProgress as progress bars on a terminal.
type benchBars struct {
	w      io.Writer
	rw     string
	lay    *progressbar.ProgressBar
	runBar *progressbar.ProgressBar
}

func newBenchBars(w io.Writer, rw string) *benchBars { return &benchBars{w: w, rw: rw} }

func (b *benchBars) layout(done, total int64) {
	if b.lay == nil {
		b.lay = progressbar.NewOptions64(total, progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetDescription("fs bench: laying out the file"), progressbar.OptionShowBytes(true),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(), progressbar.OptionSetPredictTime(true))
	}
	b.lay.Set64(done)
}

func (b *benchBars) run(frac float64) {
	if b.runBar == nil {
		if b.lay != nil {
			b.lay.Finish()
		}
		b.runBar = progressbar.NewOptions64(1000, progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetDescription("fs bench "+b.rw), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(), progressbar.OptionSetPredictTime(true))
	}
	b.runBar.Set64(int64(frac * 1000))
}

func (b *benchBars) finish() {
	for _, bar := range []*progressbar.ProgressBar{b.lay, b.runBar} {
		if bar != nil {
			bar.Finish()
		}
	}
}

// fsBench lays the file out to cfg.Size if needed, then keeps cfg.IODepth
// I/Os in flight on one ring for cfg.Runtime. A file it created is removed
// again when it fails or ctx is cancelled (an interrupt).
func fsBench(ctx context.Context, cfg benchConfig, progress benchProgress) (res benchResult, err error) {
	res = benchResult{Config: cfg}
	dir, name := splitPath(cfg.Path)
	opts := []fs.Option{fs.WithBackend(cfg.Backend)}
	if cfg.Workers > 0 {
		opts = append(opts, fs.WithWorkers(cfg.Workers))
	}
	c, err := fs.Open(ctx, dir, opts...)
	if err != nil {
		return res, err
	}
	defer c.Close()
	res.Backend, res.Note = c.Backend(), c.Features().Note
	created := false
	if cfg.Backend != "mem" {
		_, serr := os.Stat(cfg.Path)
		created = errors.Is(serr, os.ErrNotExist)
	}
	defer func() {
		if err == nil {
			err = ctx.Err() // interrupted: the result is not a measurement
		}
		if err != nil && created {
			os.Remove(cfg.Path)
		}
	}()
	var layProgress func(done, total int64)
	var runProgress func(float64)
	if progress != nil {
		layProgress, runProgress = progress.layout, progress.run
	}
	if err := layOut(ctx, c, name, cfg.Size, layProgress); err != nil {
		return res, fmt.Errorf("lay out %s: %w", cfg.Path, err)
	}
	write := strings.HasSuffix(cfg.RW, "write")
	flag := os.O_RDONLY
	op := fs.Read
	if write {
		flag, op = os.O_WRONLY, fs.Write
	}
	if cfg.Direct {
		flag |= fs.ODirect
	}
	f, err := c.OpenFile(name, flag, 0)
	if err != nil {
		return res, err
	}
	jobs := make([]jobResult, cfg.NumJobs)
	var wg sync.WaitGroup
	for j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := runProgress
			if j != 0 {
				p = nil
			}
			jobs[j] = benchJob(ctx, c, f, cfg, op, cfg.Seed+uint64(j), p)
		}()
	}
	wg.Wait()
	var hist latHist
	var elapsed float64
	var enters int64
	for _, jr := range jobs {
		if jr.err != nil {
			return res, jr.err
		}
		res.IOs += jr.ios
		res.Bytes += jr.bytes
		res.Errors += jr.errors
		hist.merge(&jr.hist)
		elapsed = max(elapsed, jr.elapsed)
		enters += jr.enters
	}
	res.RuntimeS = elapsed
	res.IOPS = float64(res.IOs) / elapsed
	res.BWMiBs = float64(res.Bytes) / elapsed / (1 << 20)
	res.LatUS = hist.summary()
	if enters >= 0 && res.IOs > 0 {
		res.EntersPerIO = float64(enters) / float64(res.IOs)
	}
	return res, nil
}

// jobResult is one ring's share of a benchmark.
type jobResult struct {
	ios, bytes, errors int64
	enters             int64 // io_uring_enter calls, or < 0 off uring
	elapsed            float64
	hist               latHist
	err                error
}

// benchJob keeps cfg.IODepth I/Os in flight on its own ring and buffer for
// cfg.Runtime.
func benchJob(ctx context.Context, c *fs.Client, f *fs.File, cfg benchConfig, op fs.Op, seed uint64, progress func(float64)) (res jobResult) {
	write := op == fs.Write
	random := strings.HasPrefix(cfg.RW, "rand")
	bs := int(cfg.BS)
	var buf *fs.Buffer
	var err error
	if cfg.Wrap {
		mem, release, merr := callerMemory(cfg.IODepth * bs)
		if merr != nil {
			return jobResult{err: fmt.Errorf("--wrap: %w", merr)}
		}
		defer release()
		buf, err = c.WrapBuffer(mem, fs.BufferOpts{BlockSize: bs})
	} else {
		buf, err = c.NewBuffer(cfg.IODepth*bs, fs.BufferOpts{BlockSize: bs})
	}
	if err != nil {
		return jobResult{err: err}
	}
	defer buf.Close()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	if write {
		for i := range buf.Bytes() {
			buf.Bytes()[i] = byte(rng.Uint32())
		}
	}
	r, err := c.NewRing(fs.RingOpts{Entries: cfg.IODepth, Op: op})
	if err != nil {
		return jobResult{err: err}
	}
	defer r.Close()
	regs := make([]fs.Region, cfg.IODepth)
	for i := range regs {
		regs[i], _ = buf.Region(i*bs, bs)
	}
	blocks := cfg.Size / cfg.BS
	seq := int64(seed-cfg.Seed) * blocks / int64(cfg.NumJobs) // jobs start spread out
	next := func() int64 {
		if random {
			return rng.Int64N(blocks) * cfg.BS
		}
		o := seq * cfg.BS
		seq = (seq + 1) % blocks
		return o
	}
	issued := make([]int64, cfg.IODepth)
	base := time.Now()
	for i := range cfg.IODepth {
		issued[i] = int64(time.Since(base))
		if _, err := r.Prep(fs.Req{File: f, Off: next(), Buf: regs[i], Tag: uint64(i)}); err != nil {
			return jobResult{err: err}
		}
	}
	if err := r.Submit(); err != nil {
		return jobResult{err: err}
	}
	out := make([]fs.Completion, cfg.IODepth)
	end := int64(cfg.Runtime)
	lastProgress := int64(0)
	enters0 := r.Enters()
	var now int64
	for {
		n, err := r.Wait(ctx, out, cfg.Batch)
		if err != nil {
			return jobResult{err: err}
		}
		now = int64(time.Since(base))
		stop := now >= end
		for _, cp := range out[:n] {
			res.hist.add(now - issued[cp.Tag])
			res.ios++
			res.bytes += cp.N
			if cp.Err != nil {
				res.errors++
			}
			if !stop {
				issued[cp.Tag] = now
				if _, err := r.Prep(fs.Req{File: f, Off: next(), Buf: regs[cp.Tag], Tag: cp.Tag}); err != nil {
					return jobResult{err: err}
				}
			}
		}
		if stop {
			break
		}
		if err := r.Submit(); err != nil {
			return jobResult{err: err}
		}
		if progress != nil && now-lastProgress > int64(100*time.Millisecond) {
			progress(float64(now) / float64(end))
			lastProgress = now
		}
	}
	res.elapsed = float64(now) / 1e9
	res.enters = r.Enters() - enters0
	if r.Enters() < 0 {
		res.enters = -1
	}
	// Drain what is still in flight (not counted).
	for {
		if _, err := r.Wait(ctx, out, 1); err != nil {
			break
		}
	}
	return res
}

// layOut creates name or extends it to size with random data, 1 MiB per
// write, through the client itself (like fio's file layout step),
// reporting bytes written to progress (when not nil) and stopping when ctx
// is done.
func layOut(ctx context.Context, c *fs.Client, name string, size int64, progress func(done, total int64)) error {
	f, err := c.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	have, err := f.Size()
	if err != nil || have >= size {
		return err
	}
	const chunk = 1 << 20
	buf, err := c.NewBuffer(16*chunk, fs.BufferOpts{BlockSize: chunk})
	if err != nil {
		return err
	}
	defer buf.Close()
	rng := rand.New(rand.NewPCG(uint64(size), 1))
	for i := range buf.Bytes() {
		buf.Bytes()[i] = byte(rng.Uint32())
	}
	reqs := make([]fs.Req, 0, 16)
	for off := have; off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		if progress != nil {
			progress(off-have, size-have)
		}
		reqs = reqs[:0]
		for k := 0; k < 16 && off < size; k++ {
			n := min(int64(chunk), size-off)
			reg, _ := buf.Region(k*chunk, int(n))
			reqs = append(reqs, fs.Req{File: f, Off: off, Buf: reg})
			off += n
		}
		cs, err := c.WriteBatch(ctx, reqs)
		if err != nil {
			return err
		}
		for i, cp := range cs {
			if cp.Err != nil {
				return fmt.Errorf("write at offset %d: %w", reqs[i].Off, cp.Err)
			}
			if cp.N != int64(reqs[i].Buf.Len()) {
				return fmt.Errorf("write at offset %d: %d of %d bytes: %w", reqs[i].Off, cp.N, reqs[i].Buf.Len(), io.ErrShortWrite)
			}
		}
	}
	if progress != nil {
		progress(size-have, size-have)
	}
	return f.Sync()
}

// latHist is a log-linear latency histogram in nanoseconds: 32 sub-buckets
// per power of two (relative error under 3%).
type latHist struct {
	counts   [64 * 32]int64
	n        int64
	sum      float64
	min, max int64
}

func (h *latHist) add(v int64) {
	if v < 0 {
		v = 0
	}
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
	h.counts[latBucket(v)]++
}

func latBucket(v int64) int {
	if v < 32 {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 6 // v >> e in [32, 64)
	return (e+1)*32 + int(v>>e) - 32
}

// latValue is the midpoint of bucket b.
func latValue(b int) float64 {
	if b < 32 {
		return float64(b)
	}
	e := b/32 - 1
	m := b%32 + 32
	return (float64(m) + 0.5) * math.Exp2(float64(e))
}

func (h *latHist) merge(o *latHist) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

func (h *latHist) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	target := int64(math.Ceil(q * float64(h.n)))
	var acc int64
	for b, c := range h.counts {
		acc += c
		if acc >= target {
			return math.Min(math.Max(latValue(b), float64(h.min)), float64(h.max))
		}
	}
	return float64(h.max)
}

func (h *latHist) summary() latSummary {
	us := func(ns float64) float64 { return math.Round(ns/100) / 10 }
	if h.n == 0 {
		return latSummary{}
	}
	return latSummary{
		Min: us(float64(h.min)), Mean: us(h.sum / float64(h.n)),
		P50: us(h.quantile(0.5)), P90: us(h.quantile(0.9)), P99: us(h.quantile(0.99)), P999: us(h.quantile(0.999)),
		Max: us(float64(h.max)),
	}
}

func splitPath(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ".", p
	}
	if i == 0 {
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}

// parseSize parses "4096", "4k", "1M", "2g" (powers of 1024, fio style).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	s = strings.TrimSuffix(strings.TrimSuffix(s, "ib"), "b")
	mul := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k':
			mul = 1 << 10
		case 'm':
			mul = 1 << 20
		case 'g':
			mul = 1 << 30
		case 't':
			mul = 1 << 40
		}
		if mul > 1 {
			s = s[:len(s)-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > math.MaxInt64/mul {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return v * mul, nil
}

func parseRuntime(s string) (time.Duration, error) {
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(v * float64(time.Second)), nil
	}
	return time.ParseDuration(s)
}

func fmtSize(v int64) string {
	switch {
	case v >= 1<<30 && v%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", v>>30)
	case v >= 1<<20 && v%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", v>>20)
	case v >= 1<<10 && v%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", v>>10)
	}
	return fmt.Sprintf("%dB", v)
}

// fmtBytes prints a byte count with two decimals in the largest unit.
func fmtBytes(v int64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2fGiB", float64(v)/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.2fMiB", float64(v)/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.2fKiB", float64(v)/(1<<10))
	}
	return fmt.Sprintf("%dB", v)
}
