//go:build linux

package fs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/fstest"
)

// TestHF3FSWrapBuffer: hf3fs registers caller memory that maps a
// /dev/shm file from offset 0 under the buffer's id (the daemon then
// holds it) and drops the key at Close, and refuses memory the daemon
// could not map, naming why.
func TestHF3FSWrapBuffer(t *testing.T) {
	d, c := newHF3FS(t, nil)
	defer c.Close()
	mem := fstest.CallerMemory(t, 1<<16)
	b, err := c.WrapBuffer(mem, fs.BufferOpts{BlockSize: 1 << 12})
	if err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("%s.b4096", hexUUID(b.ID()))
	if !contains(d.Registered(), key) {
		t.Fatalf("daemon holds %v, want the wrapped buffer's key %s", d.Registered(), key)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return !contains(d.Registered(), key) }, "wrapped buffer key still registered", d.Registered)
	mem[0] = 1 // Close left the caller's mapping alone

	anon, err := unix.Mmap(-1, 0, 1<<16, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(anon)
	if _, err := c.WrapBuffer(anon, fs.BufferOpts{}); !errors.Is(err, fs.ErrInvalid) || !strings.Contains(err.Error(), "not a MAP_SHARED") {
		t.Errorf("anonymous private memory: %v, want ErrInvalid naming MAP_SHARED", err)
	}
	if _, err := c.WrapBuffer(mem[4096:], fs.BufferOpts{}); !errors.Is(err, fs.ErrInvalid) || !strings.Contains(err.Error(), "offset 0") {
		t.Errorf("memory inside a mapping: %v, want ErrInvalid naming offset 0", err)
	}
	heap := make([]byte, 3<<12)
	off := int((4096 - uintptr(unsafe.Pointer(&heap[0]))%4096) % 4096)
	if _, err := c.WrapBuffer(heap[off:off+4096], fs.BufferOpts{}); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Go heap memory: %v, want ErrInvalid", err)
	}
	// A shared mapping of a file outside /dev/shm.
	f, err := os.CreateTemp(t.TempDir(), "notshm")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(4096)
	fm, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(fm)
	if _, err := c.WrapBuffer(fm, fs.BufferOpts{}); !errors.Is(err, fs.ErrInvalid) || !strings.Contains(err.Error(), "/dev/shm") {
		t.Errorf("shared mapping of a disk file: %v, want ErrInvalid naming /dev/shm", err)
	}
}

// TestWrapBufferDiskMapping: the local backends read straight into an
// mmap'd disk file (uring falls back to plain reads where io_uring cannot
// pin such pages): the bytes land in the file's mapping.
func TestWrapBufferDiskMapping(t *testing.T) {
	for _, be := range []string{"posix", "uring"} {
		t.Run(be, func(t *testing.T) {
			c := opener(be)(t)
			defer c.Close()
			src, err := c.OpenFile("src", os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			want := bytes.Repeat([]byte("fireflyer"), 4096/9+1)[:4096]
			if _, err := src.WriteAt(want, 0); err != nil {
				t.Fatal(err)
			}
			dst, err := os.Create(t.TempDir() + "/dst")
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			dst.Truncate(4096)
			m, err := unix.Mmap(int(dst.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Munmap(m)
			b, err := c.WrapBuffer(m, fs.BufferOpts{})
			if err != nil {
				t.Fatal(err)
			}
			reg, _ := b.Region(0, 4096)
			res, err := c.ReadBatch(context.Background(), []fs.Req{{File: src, Off: 0, Buf: reg}})
			if err != nil || res[0].Err != nil || res[0].N != 4096 {
				t.Fatalf("read into a disk mapping: %v %+v", err, res)
			}
			if !bytes.Equal(m, want) {
				t.Fatal("bytes are not in the mapped file's memory")
			}
			b.Close()
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestNUMAWrappedAndShared: WithNUMA binds wrapped caller memory and
// shared buffers too (numa_maps shows bind:0 and every page on N0), on
// the local backends and hf3fs.
func TestNUMAWrappedAndShared(t *testing.T) {
	if _, err := os.Stat("/sys/devices/system/node/node0"); err != nil {
		t.Skip("no NUMA topology in /sys")
	}
	if _, err := os.Stat("/proc/self/numa_maps"); err != nil {
		t.Skipf("no numa_maps: %v", err)
	}
	for _, be := range []string{"mem", "posix", "uring", "hf3fs"} {
		t.Run(be, func(t *testing.T) {
			var c *fs.Client
			if be == "hf3fs" {
				_, c = newHF3FS(t, nil, fs.WithNUMA(0))
			} else {
				c = opener(be, fs.WithNUMA(0))(t)
			}
			defer c.Close()
			for _, kind := range []string{"wrapped", "shared", "anonymous"} {
				var b *fs.Buffer
				var err error
				switch kind {
				case "wrapped":
					b, err = c.WrapBuffer(fstest.CallerMemory(t, 64<<10), fs.BufferOpts{})
				case "shared":
					b, err = c.NewBuffer(64<<10, fs.BufferOpts{Shared: true})
				default:
					b, err = c.NewBuffer(64<<10, fs.BufferOpts{})
				}
				if err != nil {
					t.Fatalf("%s: %v", kind, err)
				}
				checkNode0(t, kind, b.Bytes())
				b.Close()
			}
		})
	}
	c := opener("posix", fs.WithNUMA(4000))(t)
	defer c.Close()
	if _, err := c.WrapBuffer(fstest.CallerMemory(t, 4096), fs.BufferOpts{}); !errors.Is(err, fs.ErrInvalid) || !strings.Contains(err.Error(), "node 4000") {
		t.Errorf("WrapBuffer on node 4000: %v, want ErrInvalid naming the node", err)
	}
	if _, err := c.NewBuffer(4096, fs.BufferOpts{Shared: true}); !errors.Is(err, fs.ErrInvalid) || !strings.Contains(err.Error(), "node 4000") {
		t.Errorf("shared NewBuffer on node 4000: %v, want ErrInvalid naming the node", err)
	}
}

// checkNode0 touches every page of mem and finds its numa_maps line bound
// to node 0 with all pages there.
func checkNode0(t *testing.T, what string, mem []byte) {
	t.Helper()
	for i := 0; i < len(mem); i += 4096 {
		mem[i] = 1
	}
	maps, err := os.ReadFile("/proc/self/numa_maps")
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("%x ", uintptr(unsafe.Pointer(&mem[0])))
	var line string
	for _, l := range strings.Split(string(maps), "\n") {
		if strings.HasPrefix(l, prefix) {
			line = l
		}
	}
	if want := fmt.Sprintf(" N0=%d", len(mem)/4096); !strings.Contains(line, " bind:0") || !strings.Contains(line, want) {
		t.Errorf("%s: numa_maps line %q, want bind:0 and%s", what, line, want)
	}
}

// FuzzPunchHole punches arbitrary ranges into a written file on the mem
// and posix backends and compares the bytes and size with a model;
// invalid ranges must fail with ErrInvalid, never panic.
func FuzzPunchHole(f *testing.F) {
	f.Add(int64(0), int64(4096), int64(100), int64(50))
	f.Add(int64(4095), int64(2), int64(-1), int64(10))
	f.Add(int64(1<<62), int64(1<<62), int64(9000), int64(1<<20))
	f.Add(int64(70000), int64(1), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, off1, n1, off2, n2 int64) {
		const size = 1 << 16
		for _, be := range []string{"mem", "posix"} {
			c, err := fs.Open(context.Background(), t.TempDir(), fs.WithBackend(be))
			if err != nil {
				t.Fatal(err)
			}
			file, err := c.OpenFile("fuzz", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			model := bytes.Repeat([]byte{0x5a}, size)
			if _, err := file.WriteAt(model, 0); err != nil {
				t.Fatal(err)
			}
			for _, r := range [][2]int64{{off1, n1}, {off2, n2}} {
				err := file.PunchHole(r[0], r[1])
				valid := r[0] >= 0 && r[1] > 0 && r[0] <= (1<<63-1)-r[1]
				if !valid {
					if !errors.Is(err, fs.ErrInvalid) {
						t.Fatalf("%s PunchHole(%d, %d): %v, want ErrInvalid", be, r[0], r[1], err)
					}
					continue
				}
				if err != nil && !(be == "posix" && errors.Is(err, syscall.EFBIG)) {
					t.Fatalf("%s PunchHole(%d, %d): %v", be, r[0], r[1], err)
				}
				if err == nil && r[0] < size {
					clear(model[r[0]:min(size, r[0]+r[1])])
				}
			}
			got := make([]byte, size)
			if n, err := file.ReadAt(got, 0); n != size || err != nil {
				t.Fatalf("%s read back: %d %v", be, n, err)
			}
			if !bytes.Equal(got, model) {
				t.Fatalf("%s: bytes after punching (%d,%d) (%d,%d) differ from the model", be, off1, n1, off2, n2)
			}
			if sz, _ := file.Size(); sz != size {
				t.Fatalf("%s: size %d after punching, want %d", be, sz, size)
			}
			c.Close()
		}
	})
}

// FuzzOpenBuffer attaches buffers by arbitrary ids and block sizes: only
// the creator's id and block size find it; others fail with ErrNotExist
// or ErrInvalid, never a panic or a wrong buffer.
func FuzzOpenBuffer(f *testing.F) {
	f.Add([]byte{}, 0)
	f.Add(bytes.Repeat([]byte{0xff}, 16), 4096)
	f.Add([]byte("0123456789abcdef"), -7)
	f.Fuzz(func(t *testing.T, raw []byte, bs int) {
		c, err := fs.Open(context.Background(), t.TempDir(), fs.WithBackend("posix"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b, err := c.NewBuffer(1<<14, fs.BufferOpts{Shared: true, BlockSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		var id [16]byte
		copy(id[:], raw)
		ob, err := c.OpenBuffer(id, fs.BufferOpts{BlockSize: bs})
		switch {
		case id == b.ID() && bs == 4096:
			if err != nil || ob.Len() != b.Len() {
				t.Fatalf("own id: %v", err)
			}
		case bs < 0:
			if !errors.Is(err, fs.ErrInvalid) {
				t.Fatalf("block size %d: %v, want ErrInvalid", bs, err)
			}
		default:
			if !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("id %x block %d: %v, want ErrNotExist", id, bs, err)
			}
		}
		own, err := c.OpenBuffer(b.ID(), fs.BufferOpts{BlockSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		own.Bytes()[100] = 42
		if b.Bytes()[100] != 42 {
			t.Fatal("opened buffer is not the creator's memory")
		}
	})
}

// FuzzWrapBuffer wraps arbitrary slices of caller memory with arbitrary
// block sizes on posix: page-aligned, non-empty slices whose length the
// block size divides are registered and read into in place; anything
// else fails with ErrInvalid, never a panic.
func FuzzWrapBuffer(f *testing.F) {
	f.Add(0, 4096, 0)
	f.Add(1, 100, 0)
	f.Add(4096, 8192, 4096)
	f.Add(0, 1<<16, 5000)
	f.Add(8192, 0, -1)
	f.Fuzz(func(t *testing.T, off, n, bs int) {
		const size = 1 << 16
		if off < 0 || n < 0 || off > size || n > size-off {
			return // not a slice of the memory
		}
		mem := fstest.CallerMemory(t, size)
		c, err := fs.Open(context.Background(), t.TempDir(), fs.WithBackend("posix"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b, err := c.WrapBuffer(mem[off:off+n], fs.BufferOpts{BlockSize: bs})
		valid := n > 0 && off%4096 == 0 && bs >= 0 && (bs == 0 || n%bs == 0)
		if !valid {
			if !errors.Is(err, fs.ErrInvalid) {
				t.Fatalf("WrapBuffer(mem[%d:%d], bs %d): %v, want ErrInvalid", off, off+n, bs, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("WrapBuffer(mem[%d:%d], bs %d): %v", off, off+n, bs, err)
		}
		file, _ := c.OpenFile("src", os.O_RDWR|os.O_CREATE, 0o644)
		file.WriteAt(bytes.Repeat([]byte{0xa5}, n), 0)
		blk := b.BlockSize()
		reg, err := b.Region(0, blk)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.ReadBatch(context.Background(), []fs.Req{{File: file, Buf: reg}})
		if err != nil || res[0].Err != nil || res[0].N != int64(blk) || !bytes.Equal(mem[off:off+blk], bytes.Repeat([]byte{0xa5}, blk)) {
			t.Fatalf("read into wrapped mem[%d:%d]: %v %+v", off, off+blk, err, res)
		}
	})
}

// FuzzHardlinkNames gives Hardlink arbitrary names on the mem backend:
// it links, or fails with ErrInvalid, ErrExist or ErrNotExist, never
// panics, and a link reads the same bytes.
func FuzzHardlinkNames(f *testing.F) {
	f.Add("a", "b")
	f.Add("a", "a")
	f.Add("", "x")
	f.Add("a", "dir/\x00b")
	f.Fuzz(func(t *testing.T, oldname, newname string) {
		c, err := fs.Open(context.Background(), "", fs.WithBackend("mem"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if oldname != "" {
			f, err := c.OpenFile(oldname, os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte("linked"), 0)
		}
		err = c.Hardlink(oldname, newname)
		switch {
		case oldname == "" || newname == "":
			if !errors.Is(err, fs.ErrInvalid) {
				t.Fatalf("Hardlink(%q, %q): %v, want ErrInvalid", oldname, newname, err)
			}
		case oldname == newname:
			if !errors.Is(err, os.ErrExist) {
				t.Fatalf("Hardlink(%q, %q): %v, want ErrExist", oldname, newname, err)
			}
		default:
			if err != nil {
				t.Fatalf("Hardlink(%q, %q): %v", oldname, newname, err)
			}
			g, err := c.OpenFile(newname, os.O_RDONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 6)
			if n, _ := g.ReadAt(got, 0); n != 6 || string(got) != "linked" {
				t.Fatalf("link %q reads %q", newname, got[:n])
			}
		}
	})
}

// TestHF3FSHardlinkArgs: the HF3FS_IOC_HARDLINK argument carries the
// link's directory inode and base name (a link into a subdirectory lands
// there); names 3FS cannot carry fail with EINVAL before any ioctl.
func TestHF3FSHardlinkArgs(t *testing.T) {
	d, c := newHF3FS(t, nil)
	defer c.Close()
	f, err := c.OpenFile("a", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Mkdir(d.Mount()+"/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.Hardlink("a", "sub/b"); err != nil {
		t.Fatal(err)
	}
	sa, _ := os.Stat(d.Mount() + "/a")
	sb, err := os.Stat(d.Mount() + "/sub/b")
	if err != nil || !os.SameFile(sa, sb) {
		t.Fatalf("link in sub/: %v (same file: %v)", err, err == nil && os.SameFile(sa, sb))
	}
	for _, name := range []string{strings.Repeat("x", 255), "b\x00c"} {
		if err := c.Hardlink("a", name); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Hardlink to %q: %v, want EINVAL", name, err)
		}
	}
	if err := c.Hardlink("a", "nodir/b"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Hardlink into a missing directory: %v, want ErrNotExist", err)
	}
}
