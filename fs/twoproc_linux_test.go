//go:build linux

package fs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fireflyer-go/fireflyer/fs"
)

// The second process of TestSharedBufferTwoProcesses is this test binary
// with FS_TWOPROC set to "verb backend root mount id blocksize file".
func init() { child = twoProcChild }

func twoProcChild() int {
	spec := os.Getenv("FS_TWOPROC")
	if spec == "" {
		return -1
	}
	if err := runTwoProcChild(strings.Fields(spec)); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// runTwoProcChild attaches the parent's buffer by id and either reads the
// file into it through a ring ("fill") or prints the SHA-256 of the bytes
// it sees there ("sum").
func runTwoProcChild(a []string) error {
	if len(a) != 7 {
		return fmt.Errorf("bad spec %q", a)
	}
	verb, backend, root, mount, idHex, bsStr, file := a[0], a[1], a[2], a[3], a[4], a[5], a[6]
	raw, err := hex.DecodeString(idHex)
	if err != nil || len(raw) != 16 {
		return fmt.Errorf("bad id %q", idHex)
	}
	var id [16]byte
	copy(id[:], raw)
	bs, _ := strconv.Atoi(bsStr)
	opts := []fs.Option{fs.WithBackend(backend)}
	if backend == "hf3fs" {
		var mst unix.Stat_t
		if err := unix.Stat(mount, &mst); err != nil {
			return err
		}
		opts = append(opts, fs.WithHF3FS(fs.HF3FSOpts{MountPoint: mount, CheckFile: func(fd int) error {
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil || st.Dev != mst.Dev {
				return fs.ErrNotHF3FS
			}
			return nil
		}, Registered: parentMapped}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := fs.Open(ctx, root, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	if c.Backend() != backend {
		return fmt.Errorf("got backend %s (%s)", c.Backend(), c.Features().Note)
	}
	b, err := c.OpenBuffer(id, fs.BufferOpts{BlockSize: bs})
	if err != nil {
		return err
	}
	switch verb {
	case "sum":
		sum := sha256.Sum256(b.Bytes())
		fmt.Println(hex.EncodeToString(sum[:]))
		return nil
	case "fill":
		f, err := c.OpenFile(file, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		r, err := c.NewRing(fs.RingOpts{Entries: 16, Op: fs.Read})
		if err != nil {
			return err
		}
		for off := 0; off < b.Len(); off += bs {
			reg, err := b.Region(off, bs)
			if err != nil {
				return err
			}
			if _, err := r.Prep(fs.Req{File: f, Off: int64(off), Buf: reg, Tag: uint64(off)}); err != nil {
				return err
			}
		}
		if err := r.Submit(); err != nil {
			return err
		}
		out := make([]fs.Completion, 16)
		for got := 0; got < b.Len()/bs; {
			n, err := r.Wait(ctx, out, 1)
			if err != nil {
				return err
			}
			for _, cp := range out[:n] {
				if cp.Err != nil || cp.N != int64(bs) {
					return fmt.Errorf("read %+v", cp)
				}
			}
			got += n
		}
		return r.Close()
	}
	return fmt.Errorf("bad verb %q", verb)
}

// parentMapped is the second process's Registered hook on hf3fs: on a
// real mount the symlink call returns once the daemon has registered the
// key; the fake daemon (in the parent process) answers asynchronously,
// so wait until the parent has mapped the link's target.
func parentMapped(link string) error {
	target, err := os.Readlink(link)
	if err != nil {
		return err
	}
	maps := fmt.Sprintf("/proc/%d/maps", os.Getppid())
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(maps)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(" "+target+"\n")) {
			return nil
		}
	}
	return fmt.Errorf("the daemon did not map %s", target)
}

// TestSharedBufferTwoProcesses shares one Buffer between two real
// processes: the second attaches it by id (OpenBuffer) and reads a file
// into it through its own ring; the first finds the file's bytes in its
// own Buffer without reading the file; then the first stores a pattern
// and the second sees it (its SHA-256). The /dev/shm file is 0600 unless
// Mode widens it.
func TestSharedBufferTwoProcesses(t *testing.T) {
	for _, backend := range []string{"posix", "uring", "hf3fs"} {
		t.Run(backend, func(t *testing.T) {
			var c *fs.Client
			var d *fs.FakeDaemon
			root, mount := t.TempDir(), "-"
			if backend == "hf3fs" {
				d, c = newHF3FS(t, nil)
				root, mount = d.Mount(), d.Mount()
			} else {
				var err error
				if c, err = fs.Open(context.Background(), root, fs.WithBackend(backend)); err != nil {
					t.Fatal(err)
				}
				if c.Backend() != backend {
					c.Close()
					t.Skipf("%s unavailable: %s", backend, c.Features().Note)
				}
			}
			defer c.Close()
			const size, bs = 1 << 18, 1 << 14
			want := make([]byte, size)
			for i := range want {
				want[i] = byte(i*31 + i>>9)
			}
			file := filepath.Join(root, "shared-src")
			f, err := c.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(want, 0); err != nil { // through the backend (the fake daemon keeps data itself)
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			b, err := c.NewBuffer(size, fs.BufferOpts{Shared: true, BlockSize: bs})
			if err != nil {
				t.Fatal(err)
			}
			id := b.ID()
			run := func(verb string) string {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), fmt.Sprintf("FS_TWOPROC=%s %s %s %s %x %d %s", verb, backend, root, mount, id, bs, file))
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("child %s: %v\n%s", verb, err, stderr.String())
				}
				return strings.TrimSpace(string(out))
			}
			run("fill")
			if !bytes.Equal(b.Bytes(), want) {
				t.Fatal("the bytes the second process read into the shared buffer are not in the first's")
			}
			for i := range b.Bytes() {
				b.Bytes()[i] = byte(i * 7)
			}
			sum := sha256.Sum256(b.Bytes())
			if got := run("sum"); got != hex.EncodeToString(sum[:]) {
				t.Fatalf("second process sees SHA-256 %s, want %x", got, sum)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			// Permissions of the shared-memory file.
			for _, tc := range []struct {
				mode, want os.FileMode
			}{{0, 0o600}, {0o640, 0o640}} {
				sb, err := c.NewBuffer(4096, fs.BufferOpts{Shared: true, Mode: tc.mode})
				if err != nil {
					t.Fatal(err)
				}
				got, ok := shmModeOf(t, d, sb)
				if !ok {
					t.Fatalf("no /dev/shm file found for buffer %x", sb.ID())
				}
				if got != tc.want {
					t.Errorf("Mode %v: shm file mode %v, want %v", tc.mode, got, tc.want)
				}
				sb.Close()
			}
		})
	}
}

// shmModeOf returns the permission of b's /dev/shm file.
func shmModeOf(t *testing.T, d *fs.FakeDaemon, b *fs.Buffer) (os.FileMode, bool) {
	t.Helper()
	if d == nil {
		matches, _ := filepath.Glob("/dev/shm/fireflyer-iov-*")
		for _, m := range matches {
			if strings.Contains(m, hexUUID(b.ID())) {
				st, err := os.Stat(m)
				if err != nil {
					t.Fatal(err)
				}
				return st.Mode().Perm(), true
			}
		}
		return 0, false
	}
	// hf3fs: the target of the buffer's key, as the daemon saw it.
	for _, name := range d.Registered() {
		if strings.HasPrefix(name, hexUUID(b.ID())) {
			target, err := os.Readlink(filepath.Join(d.Mount(), "3fs-virt", "iovs", name))
			if err != nil {
				t.Fatal(err)
			}
			m, ok := d.ShmFiles()[target]
			return m, ok
		}
	}
	return 0, false
}

// hexUUID is id in the dashed form of a USRBIO key.
func hexUUID(id [16]byte) string {
	h := hex.EncodeToString(id[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
