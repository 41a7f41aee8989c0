// Command fs-dataloader is the random-access data loader 3FS is built for:
// it reads every sample file of a directory once per epoch, in a shuffled
// order, keeping up to -depth reads in flight on one read ring over one
// registered buffer, checks each sample's content, and reports samples/s
// and MiB/s. With -gen it first writes a directory of synthetic samples.
//
//	go run ./examples/fs-dataloader -dir /tmp/samples -gen 2000 -size 64k
//	go run ./examples/fs-dataloader -dir /tmp/samples -depth 128 -epochs 3
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fireflyer-go/fireflyer/fs"
)

func main() {
	dir := flag.String("dir", filepath.Join(os.TempDir(), "fs-dataloader"), "directory of sample files")
	gen := flag.Int("gen", 0, "first write this many synthetic samples into -dir")
	size := flag.String("size", "64k", "mean sample size for -gen (k, m suffixes)")
	depth := flag.Int("depth", 64, "reads in flight (ring entries)")
	epochs := flag.Int("epochs", 1, "passes over the data set")
	seed := flag.Uint64("seed", 1, "shuffle seed")
	backend := flag.String("backend", "auto", "fs backend: auto, hf3fs, uring, posix")
	flag.Parse()
	if *gen < 0 || *epochs < 1 || flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "fs-dataloader: -gen %d must be ≥ 0 and -epochs %d ≥ 1, and no arguments (got %q)\n", *gen, *epochs, flag.Args())
		os.Exit(2)
	}
	ctx := context.Background()
	if *gen > 0 {
		n, err := parseSize(*size)
		if err == nil {
			err = Generate(*dir, *gen, n, *seed)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "fs-dataloader:", err)
			os.Exit(1)
		}
	}
	c, err := fs.Open(ctx, *dir, fs.WithBackend(*backend))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fs-dataloader:", err)
		os.Exit(1)
	}
	defer c.Close()
	st, err := Load(ctx, c, Options{Depth: *depth, Epochs: *epochs, Seed: *seed})
	if err != nil {
		fmt.Fprintln(os.Stderr, "fs-dataloader:", err)
		os.Exit(1)
	}
	st.Print(os.Stdout, c.Backend())
}

func parseSize(s string) (int, error) {
	mul := 1
	switch {
	case strings.HasSuffix(s, "k"):
		mul, s = 1<<10, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mul, s = 1<<20, strings.TrimSuffix(s, "m")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("-size %q: want a positive size like 64k", s)
	}
	return n * mul, nil
}

// Sample file format: an 8-byte little-endian sample index, a 4-byte CRC-32
// (IEEE) of the payload, then the payload.
const sampleHeader = 12

// Generate writes n samples named sample-%06d.bin into dir, sizes uniform
// in [mean/2, 3*mean/2], payload pseudo-random.
func Generate(dir string, n, mean int, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(seed, 99))
	for i := range n {
		size := max(sampleHeader+1, mean/2+r.IntN(mean+1))
		b := make([]byte, size)
		for j := sampleHeader; j < size; j++ {
			b[j] = byte(r.Uint32())
		}
		binary.LittleEndian.PutUint64(b, uint64(i))
		binary.LittleEndian.PutUint32(b[8:], crc32.ChecksumIEEE(b[sampleHeader:]))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("sample-%06d.bin", i)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Options configures Load.
type Options struct {
	Depth  int    // reads in flight, 1..32768
	Epochs int    // passes over the data set (0 means 1; negative is an error)
	Seed   uint64 // shuffle seed; each epoch reshuffles
	// Visit, when non-nil, gets every sample read (its index and bytes,
	// valid only during the call) in completion order.
	Visit func(epoch, index int, data []byte)
}

// Stats is what Load measured.
type Stats struct {
	Samples, Bytes int64
	Elapsed        time.Duration
	Depth, Epochs  int
	Orders         [][]int // the sample order of each epoch
}

// Print writes a one-line report.
func (s Stats) Print(w io.Writer, backend string) {
	sec := s.Elapsed.Seconds()
	fmt.Fprintf(w, "backend %s: %d samples (%.1f MiB) over %d epochs at depth %d in %v: %.0f samples/s, %.1f MiB/s, all checksums OK\n",
		backend, s.Samples, float64(s.Bytes)/(1<<20), s.Epochs, s.Depth, s.Elapsed.Round(time.Millisecond),
		float64(s.Samples)/sec, float64(s.Bytes)/(1<<20)/sec)
}

// ErrSample is returned for a sample whose index or checksum is wrong.
var ErrSample = errors.New("fs-dataloader: bad sample")

// Load reads every regular file under the Client's root once per epoch in
// a shuffled order through one read ring, verifying each sample.
func Load(ctx context.Context, c *fs.Client, o Options) (Stats, error) {
	if o.Depth < 1 || o.Depth > 32768 {
		return Stats{}, fmt.Errorf("depth %d outside 1..32768", o.Depth)
	}
	if o.Epochs < 0 {
		return Stats{}, fmt.Errorf("epochs %d is negative", o.Epochs)
	}
	o.Epochs = max(1, o.Epochs) // 0: one pass
	ents, err := os.ReadDir(c.Root())
	if err != nil {
		return Stats{}, err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), "sample-") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return Stats{}, fmt.Errorf("no sample-* files in %s (generate some with -gen)", c.Root())
	}
	files := make([]*fs.File, len(names))
	sizes := make([]int, len(names))
	slot := 4096
	for i, n := range names {
		f, err := c.OpenFile(n, os.O_RDONLY, 0)
		if err != nil {
			return Stats{}, err
		}
		defer f.Close()
		sz, err := f.Size()
		if err != nil {
			return Stats{}, err
		}
		files[i], sizes[i] = f, int(sz)
		slot = max(slot, (int(sz)+4095)/4096*4096)
	}
	if int64(slot)*int64(o.Depth) > 1<<30 {
		return Stats{}, fmt.Errorf("depth %d x largest sample %d B exceeds 1 GiB of buffer", o.Depth, slot)
	}
	buf, err := c.NewBuffer(slot*o.Depth, fs.BufferOpts{BlockSize: slot})
	if err != nil {
		return Stats{}, err
	}
	defer buf.Close()
	ring, err := c.NewRing(fs.RingOpts{Entries: o.Depth, Op: fs.Read})
	if err != nil {
		return Stats{}, err
	}
	defer ring.Close()

	st := Stats{Depth: o.Depth, Epochs: o.Epochs}
	out := make([]fs.Completion, o.Depth)
	sampleOf := make([]int, o.Depth) // slot -> sample
	start := time.Now()
	for ep := range o.Epochs {
		r := rand.New(rand.NewPCG(o.Seed, uint64(ep)))
		order := r.Perm(len(names))
		st.Orders = append(st.Orders, order)
		free := make([]int, 0, o.Depth)
		for k := o.Depth - 1; k >= 0; k-- {
			free = append(free, k)
		}
		next, inflight := 0, 0
		for next < len(order) || inflight > 0 {
			for next < len(order) && len(free) > 0 {
				k := free[len(free)-1]
				free = free[:len(free)-1]
				s := order[next]
				next++
				reg, err := buf.Region(k*slot, max(1, sizes[s]))
				if err != nil {
					return st, err
				}
				if _, err := ring.Prep(fs.Req{File: files[s], Buf: reg, Tag: uint64(k)}); err != nil {
					return st, err
				}
				sampleOf[k] = s
				inflight++
			}
			if err := ring.Submit(); err != nil {
				return st, err
			}
			n, err := ring.Wait(ctx, out, 1)
			if err != nil {
				return st, err
			}
			for _, cp := range out[:n] {
				inflight--
				k := int(cp.Tag)
				free = append(free, k)
				s := sampleOf[k]
				if cp.Err != nil {
					return st, fmt.Errorf("%s: %w", names[s], cp.Err)
				}
				if cp.N != int64(sizes[s]) {
					return st, fmt.Errorf("%w: %s: read %d of %d bytes", ErrSample, names[s], cp.N, sizes[s])
				}
				data := buf.Bytes()[k*slot : k*slot+int(cp.N)]
				if err := check(data, names[s]); err != nil {
					return st, err
				}
				if o.Visit != nil {
					o.Visit(ep, s, data)
				}
				st.Samples++
				st.Bytes += cp.N
			}
		}
	}
	st.Elapsed = time.Since(start)
	return st, nil
}

// check verifies a sample's index (against its file name) and CRC.
func check(b []byte, name string) error {
	if len(b) < sampleHeader {
		return fmt.Errorf("%w: %s: %d bytes", ErrSample, name, len(b))
	}
	want := strings.TrimSuffix(strings.TrimPrefix(name, "sample-"), ".bin")
	if idx, err := strconv.Atoi(want); err != nil || uint64(idx) != binary.LittleEndian.Uint64(b) {
		return fmt.Errorf("%w: %s holds sample %d", ErrSample, name, binary.LittleEndian.Uint64(b))
	}
	if crc32.ChecksumIEEE(b[sampleHeader:]) != binary.LittleEndian.Uint32(b[8:]) {
		return fmt.Errorf("%w: %s: checksum mismatch", ErrSample, name)
	}
	return nil
}
