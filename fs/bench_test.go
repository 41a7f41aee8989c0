//go:build unix

package fs_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fireflyer-go/fireflyer/fs"
)

const benchFile = 64 << 20

// benchSetup writes a 64 MiB file (page cache warm afterwards).
func benchSetup(b *testing.B, c *fs.Client) *fs.File {
	b.Helper()
	f, err := c.OpenFile("bench", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	if sz, _ := f.Size(); sz < benchFile {
		chunk := make([]byte, 1<<20)
		for off := int64(0); off < benchFile; off += 1 << 20 {
			if _, err := f.WriteAt(chunk, off); err != nil {
				b.Fatal(err)
			}
		}
	}
	return f
}

// runRing keeps depth reads of bs bytes in flight for b.N I/Os.
func runRing(b *testing.B, c *fs.Client, f *fs.File, bs, depth int, random bool) {
	buf, _ := c.NewBuffer(depth*bs, fs.BufferOpts{BlockSize: bs})
	r, err := c.NewRing(fs.RingOpts{Entries: depth, Op: fs.Read})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	regs := make([]fs.Region, depth)
	for i := range regs {
		regs[i], _ = buf.Region(i*bs, bs)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	blocks := int64(benchFile / bs)
	var seq int64
	off := func() int64 {
		if random {
			return rng.Int64N(blocks) * int64(bs)
		}
		seq = (seq + 1) % blocks
		return seq * int64(bs)
	}
	out := make([]fs.Completion, depth)
	ctx := context.Background()
	b.SetBytes(int64(bs))
	b.ResetTimer()
	inflight := 0
	for i := 0; i < depth && i < b.N; i++ {
		r.Prep(fs.Req{File: f, Off: off(), Buf: regs[i], Tag: uint64(i)})
		inflight++
	}
	r.Submit()
	issued := inflight
	for inflight > 0 {
		n, err := r.Wait(ctx, out, 1)
		if err != nil {
			b.Fatal(err)
		}
		inflight -= n
		for _, cp := range out[:n] {
			if cp.Err != nil {
				b.Fatal(cp.Err)
			}
			if issued < b.N {
				r.Prep(fs.Req{File: f, Off: off(), Buf: regs[cp.Tag], Tag: cp.Tag})
				issued++
				inflight++
			}
		}
		r.Submit()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IOPS")
}

// BenchmarkRandRead4K compares the backends at queue depth 64 with the
// anchor, os.File.ReadAt from 64 goroutines, on the same warm file.
func BenchmarkRandRead4K(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bench"), make([]byte, benchFile), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, be := range []string{"uring", "posix", "mem"} {
		b.Run(be+"/QD64", func(b *testing.B) {
			c, err := fs.Open(context.Background(), dir, fs.WithBackend(be))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			runRing(b, c, benchSetup(b, c), 4096, 64, true)
		})
	}
	// fio psync's shape: one synchronous pread loop per CPU, against the
	// posix backend with as many workers at depth 16.
	procs := runtime.GOMAXPROCS(0)
	b.Run(fmt.Sprintf("posix/%dworkers/QD16", procs), func(b *testing.B) {
		c, err := fs.Open(context.Background(), dir, fs.WithBackend("posix"), fs.WithWorkers(procs))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		runRing(b, c, benchSetup(b, c), 4096, 16, true)
	})
	b.Run(fmt.Sprintf("anchor-psync/%dgoroutines", procs), func(b *testing.B) {
		readLoop(b, filepath.Join(dir, "bench"), procs)
	})
	// One goroutine with one ring against one goroutine calling ReadAt.
	b.Run("anchor-os.File.ReadAt/1goroutine", func(b *testing.B) {
		f, err := os.Open(filepath.Join(dir, "bench"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(4096)
		p := make([]byte, 4096)
		rng := rand.New(rand.NewPCG(4, 5))
		b.ResetTimer()
		for range b.N {
			f.ReadAt(p, rng.Int64N(benchFile/4096)*4096)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IOPS")
	})
	b.Run("anchor-os.File.ReadAt/64goroutines", func(b *testing.B) {
		f, err := os.Open(filepath.Join(dir, "bench"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(4096)
		var wg sync.WaitGroup
		per := (b.N + 63) / 64
		b.ResetTimer()
		for g := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := make([]byte, 4096)
				rng := rand.New(rand.NewPCG(uint64(g), 3))
				for range per {
					f.ReadAt(p, rng.Int64N(benchFile/4096)*4096)
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(per*64)/b.Elapsed().Seconds(), "IOPS")
	})
}

// readLoop runs b.N random 4 KiB preads split over g goroutines.
func readLoop(b *testing.B, path string, g int) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	b.SetBytes(4096)
	var wg sync.WaitGroup
	per := (b.N + g - 1) / g
	b.ResetTimer()
	for k := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, 4096)
			rng := rand.New(rand.NewPCG(uint64(k), 9))
			for range per {
				unix.Pread(fd, p, rng.Int64N(benchFile/4096)*4096)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(per*g)/b.Elapsed().Seconds(), "IOPS")
}

// BenchmarkSeqRead1M is BenchmarkRandRead4K for 1 MiB sequential reads at
// depth 8, against os.File.ReadAt from 8 goroutines.
func BenchmarkSeqRead1M(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bench"), make([]byte, benchFile), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, be := range []string{"uring", "posix"} {
		b.Run(be+"/QD8", func(b *testing.B) {
			c, err := fs.Open(context.Background(), dir, fs.WithBackend(be))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			runRing(b, c, benchSetup(b, c), 1<<20, 8, false)
		})
	}
	b.Run("anchor-os.File.ReadAt/8goroutines", func(b *testing.B) {
		f, err := os.Open(filepath.Join(dir, "bench"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(1 << 20)
		var wg sync.WaitGroup
		per := (b.N + 7) / 8
		b.ResetTimer()
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := make([]byte, 1<<20)
				for i := range per {
					f.ReadAt(p, int64((g*per+i)%(benchFile>>20))<<20)
				}
			}()
		}
		wg.Wait()
	})
}

// BenchmarkRingOverhead measures Prep+Submit+Wait per I/O on the mem
// backend with 8-byte I/Os (the ring machinery, nearly no data movement).
func BenchmarkRingOverhead(b *testing.B) {
	c, err := fs.Open(context.Background(), "", fs.WithBackend("mem"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	f, _ := c.OpenFile("x", os.O_RDWR|os.O_CREATE, 0o644)
	f.WriteAt(make([]byte, 4096), 0)
	buf, _ := c.NewBuffer(4096, fs.BufferOpts{})
	r, _ := c.NewRing(fs.RingOpts{Entries: 64, Op: fs.Read})
	regs := make([]fs.Region, 64)
	for i := range regs {
		regs[i], _ = buf.Region(i*8, 8)
	}
	out := make([]fs.Completion, 64)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		k := min(64, b.N-done)
		for i := range k {
			r.Prep(fs.Req{File: f, Off: int64(i * 8), Buf: regs[i], Tag: uint64(i)})
		}
		r.Submit()
		for got := 0; got < k; {
			n, _ := r.Wait(ctx, out, k-got)
			got += n
		}
		done += k
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IOs/s")
}
