package fstest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"syscall"
	"testing"
	"unsafe"

	"github.com/fireflyer-go/fireflyer/fs"
)

// skipUnsupported skips the test when err says the backend lacks the
// call (a third party's backend need not have it).
func skipUnsupported(t *testing.T, c *fs.Client, call string, err error) {
	t.Helper()
	if errors.Is(err, fs.ErrUnsupported) {
		t.Skipf("%s: %s unsupported: %v", c.Backend(), call, err)
	}
}

// pattern returns n bytes of a pattern starting at seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7+i/251)
	}
	return b
}

// testWrapBuffer: I/O reads into and writes from the caller's own memory,
// with no copy (the Buffer's bytes are the caller's slice).
func testWrapBuffer(t *testing.T, open Opener) {
	c := openC(t, open)
	s := newSide(t, c, "wrap", 1<<16, 4)
	want := pattern(1<<16, 3)
	copy(s.buf.Bytes(), want)
	if cp := s.do(t, s.wr, 0, 0, 1<<16, 1); cp.Err != nil || cp.N != 1<<16 {
		t.Fatalf("write: %+v", cp)
	}
	mem := CallerMemory(t, 1<<16)
	wb, err := c.WrapBuffer(mem, fs.BufferOpts{BlockSize: 1 << 14})
	skipUnsupported(t, c, "WrapBuffer", err)
	if err != nil {
		t.Fatalf("WrapBuffer: %v", err)
	}
	if got := wb.Bytes(); len(got) != len(mem) || unsafe.SliceData(got) != unsafe.SliceData(mem) {
		t.Fatalf("wrapped Buffer's Bytes are not the caller's memory")
	}
	if _, err := wb.Region(1<<14-10, 20); !errors.Is(err, fs.ErrRange) {
		t.Errorf("region across a wrapped block: %v, want ErrRange", err)
	}
	// Four 16 KiB reads land in the caller's slice.
	for k := range 4 {
		reg := must(wb.Region(k<<14, 1<<14))
		must(s.rd.Prep(fs.Req{File: s.f, Off: int64(k) << 14, Buf: reg, Tag: uint64(10 + k)}))
	}
	if err := s.rd.Submit(); err != nil {
		t.Fatal(err)
	}
	for got := 0; got < 4; {
		n, err := s.rd.Wait(t.Context(), s.out, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, cp := range s.out[:n] {
			if cp.Err != nil || cp.N != 1<<14 {
				t.Fatalf("read into wrapped memory: %+v", cp)
			}
		}
		got += n
	}
	if !bytes.Equal(mem, want) {
		t.Fatal("caller memory does not hold the file's bytes after reads into the wrapped buffer")
	}
	// A write from the caller's memory.
	copy(mem[:4096], pattern(4096, 99))
	reg := must(wb.Region(0, 4096))
	must(s.wr.Prep(fs.Req{File: s.f, Off: 1 << 16, Buf: reg, Tag: 20}))
	must(0, s.wr.Submit())
	if n, err := s.wr.Wait(t.Context(), s.out, 1); err != nil || n != 1 || s.out[0].Err != nil || s.out[0].N != 4096 {
		t.Fatalf("write from wrapped memory: %d %v %+v", n, err, s.out[0])
	}
	clear(s.buf.Bytes())
	if cp := s.do(t, s.rd, 1<<16, 0, 4096, 21); cp.Err != nil || cp.N != 4096 || !bytes.Equal(s.buf.Bytes()[:4096], pattern(4096, 99)) {
		t.Fatalf("read back of the write from wrapped memory: %+v", cp)
	}
	if err := wb.Close(); err != nil {
		t.Fatalf("Close of a wrapped buffer: %v", err)
	}
	mem[0] ^= 0xff // still the caller's, still mapped
	if _, err := c.WrapBuffer(mem[1:], fs.BufferOpts{}); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("unaligned memory: %v, want ErrInvalid", err)
	}
	if _, err := c.WrapBuffer(nil, fs.BufferOpts{}); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("no memory: %v, want ErrInvalid", err)
	}
	if _, err := c.WrapBuffer(mem, fs.BufferOpts{BlockSize: 5000}); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("block size not dividing the memory: %v, want ErrInvalid", err)
	}
}

// testOpenBuffer: a shared Buffer attached by id is the same memory.
func testOpenBuffer(t *testing.T, open Opener) {
	c := openC(t, open)
	s := newSide(t, c, "share", 1<<14, 4)
	b, err := c.NewBuffer(1<<15, fs.BufferOpts{Shared: true, BlockSize: 1 << 13})
	skipUnsupported(t, c, "NewBuffer(Shared)", err)
	if err != nil {
		t.Fatalf("NewBuffer(Shared): %v", err)
	}
	ob, err := c.OpenBuffer(b.ID(), fs.BufferOpts{BlockSize: 1 << 13})
	skipUnsupported(t, c, "OpenBuffer", err)
	if err != nil {
		t.Fatalf("OpenBuffer: %v", err)
	}
	if ob.Len() != b.Len() || ob.BlockSize() != b.BlockSize() || ob.ID() != b.ID() {
		t.Fatalf("opened buffer: %d bytes, block %d, id %x; want %d, %d, %x", ob.Len(), ob.BlockSize(), ob.ID(), b.Len(), b.BlockSize(), b.ID())
	}
	// A read into the creator's buffer shows in the opened one.
	want := pattern(1<<13, 5)
	copy(s.buf.Bytes(), want)
	s.do(t, s.wr, 0, 0, 1<<13, 1)
	reg := must(b.Region(1<<13, 1<<13))
	must(s.rd.Prep(fs.Req{File: s.f, Off: 0, Buf: reg, Tag: 2}))
	must(0, s.rd.Submit())
	if n, err := s.rd.Wait(t.Context(), s.out, 1); err != nil || n != 1 || s.out[0].N != 1<<13 {
		t.Fatalf("read into the shared buffer: %d %v %+v", n, err, s.out[0])
	}
	if !bytes.Equal(ob.Bytes()[1<<13:1<<14], want) {
		t.Fatal("bytes read into the creator's buffer are not in the opened buffer")
	}
	// A write from the opened side reaches the file.
	copy(ob.Bytes()[:1<<13], pattern(1<<13, 77))
	if !bytes.Equal(b.Bytes()[:1<<13], pattern(1<<13, 77)) {
		t.Fatal("bytes stored through the opened buffer are not in the creator's")
	}
	must(s.wr.Prep(fs.Req{File: s.f, Off: 1 << 13, Buf: must(ob.Region(0, 1<<13)), Tag: 3}))
	must(0, s.wr.Submit())
	if n, err := s.wr.Wait(t.Context(), s.out, 1); err != nil || n != 1 || s.out[0].N != 1<<13 {
		t.Fatalf("write from the opened buffer: %d %v %+v", n, err, s.out[0])
	}
	clear(s.buf.Bytes())
	if cp := s.do(t, s.rd, 1<<13, 0, 1<<13, 4); cp.N != 1<<13 || !bytes.Equal(s.buf.Bytes()[:1<<13], pattern(1<<13, 77)) {
		t.Fatalf("file after the write from the opened buffer: %+v", cp)
	}
	// A size that is not a page multiple: the opened side gets the
	// creator's size, not the page-rounded mapping.
	odd := must(c.NewBuffer(5000, fs.BufferOpts{Shared: true}))
	if oo := must(c.OpenBuffer(odd.ID(), fs.BufferOpts{})); oo.Len() != 5000 {
		t.Errorf("opened 5000-byte buffer has %d bytes", oo.Len())
	} else {
		odd.Bytes()[4999] = 0x3c
		if oo.Bytes()[4999] != 0x3c {
			t.Error("last byte of the 5000-byte buffer is not shared")
		}
		oo.Close()
	}
	odd.Close()
	if _, err := c.OpenBuffer(b.ID(), fs.BufferOpts{BlockSize: 1 << 12}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenBuffer with another block size: %v, want ErrNotExist", err)
	}
	var none [16]byte
	_, _ = rand.Read(none[:])
	if _, err := c.OpenBuffer(none, fs.BufferOpts{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenBuffer of an unknown id: %v, want ErrNotExist", err)
	}
	if _, err := c.OpenBuffer(b.ID(), fs.BufferOpts{BlockSize: -1}); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("OpenBuffer with a negative block size: %v, want ErrInvalid", err)
	}
	if _, err := c.NewBuffer(4096, fs.BufferOpts{Shared: true, Mode: 0o1777}); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Mode beyond 0777: %v, want ErrInvalid", err)
	}
	id := b.ID()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.OpenBuffer(id, fs.BufferOpts{BlockSize: 1 << 13}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenBuffer after the creator closed it: %v, want ErrNotExist", err)
	}
	if ob.Bytes()[0] != pattern(1, 77)[0] { // the opened side keeps the memory
		t.Error("opened buffer lost its bytes when the creator closed")
	}
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
}

// testPunchHole: a punched range reads as zeros and the size stays.
func testPunchHole(t *testing.T, open Opener) {
	c := openC(t, open)
	s := newSide(t, c, "punch", 1<<16, 4)
	want := pattern(1<<16, 11)
	copy(s.buf.Bytes(), want)
	s.do(t, s.wr, 0, 0, 1<<16, 1)
	if err := s.f.PunchHole(8192, 16384); err != nil {
		skipUnsupported(t, c, "PunchHole", err)
		t.Fatalf("PunchHole: %v", err)
	}
	clear(want[8192 : 8192+16384])
	for i := range s.buf.Bytes() {
		s.buf.Bytes()[i] = 0xee
	}
	if cp := s.do(t, s.rd, 0, 0, 1<<16, 2); cp.Err != nil || cp.N != 1<<16 {
		t.Fatalf("read after PunchHole: %+v", cp)
	}
	if !bytes.Equal(s.buf.Bytes(), want) {
		t.Fatal("punched range does not read as zeros, or data around it changed")
	}
	if err := s.f.Sync(); err != nil {
		t.Fatal(err)
	}
	if sz := must(s.f.Size()); sz != 1<<16 {
		t.Fatalf("size after PunchHole %d, want %d (KEEP_SIZE)", sz, 1<<16)
	}
	if err := s.f.PunchHole(1<<20, 4096); err != nil { // past EOF: nothing to free
		t.Fatalf("PunchHole past EOF: %v", err)
	}
	if sz := must(s.f.Size()); sz != 1<<16 {
		t.Fatalf("size after PunchHole past EOF %d, want %d", sz, 1<<16)
	}
	if c.Features().ForbidReadHoles {
		r := must(c.NewRing(fs.RingOpts{Entries: 2, Op: fs.Read, Flags: fs.ForbidReadHoles}))
		must(r.Prep(fs.Req{File: s.f, Off: 8192, Buf: must(s.buf.Region(0, 4096)), Tag: 3}))
		must(0, r.Submit())
		if n, err := r.Wait(t.Context(), s.out, 1); err != nil || n != 1 || !errors.Is(s.out[0].Err, syscall.ENODATA) {
			t.Errorf("ForbidReadHoles read of a punched range: %d %v %+v, want ENODATA", n, err, s.out[0])
		}
		r.Close()
	}
	for _, tc := range []struct{ off, n int64 }{{-1, 4096}, {0, 0}, {0, -5}, {1 << 62, 1 << 62}} {
		if err := s.f.PunchHole(tc.off, tc.n); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("PunchHole(%d, %d): %v, want ErrInvalid", tc.off, tc.n, err)
		}
	}
	ro := must(c.OpenFile("punch", os.O_RDONLY, 0))
	if err := ro.PunchHole(0, 4096); !errors.Is(err, syscall.EBADF) {
		t.Errorf("PunchHole on a read-only file: %v, want EBADF", err)
	}
	ro.Close()
	closed := must(c.OpenFile("punch", os.O_RDWR, 0))
	closed.Close()
	if err := closed.PunchHole(0, 4096); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("PunchHole on a closed file: %v, want ErrClosed", err)
	}
}

// testHardlink: a hard link names the same file.
func testHardlink(t *testing.T, open Opener) {
	c := openC(t, open)
	s := newSide(t, c, "link-a", 1<<13, 4)
	copy(s.buf.Bytes(), pattern(1<<12, 21))
	s.do(t, s.wr, 0, 0, 1<<12, 1)
	if err := s.f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := c.Hardlink("link-a", "link-b"); err != nil {
		skipUnsupported(t, c, "Hardlink", err)
		t.Fatalf("Hardlink: %v", err)
	}
	fb := must(c.OpenFile("link-b", os.O_RDWR, 0))
	defer fb.Close()
	if sz := must(fb.Size()); sz != 1<<12 {
		t.Fatalf("link size %d, want %d", sz, 1<<12)
	}
	r := s.rd
	reg := must(s.buf.Region(1<<12, 1<<12))
	must(r.Prep(fs.Req{File: fb, Off: 0, Buf: reg, Tag: 2}))
	must(0, r.Submit())
	if n, err := r.Wait(t.Context(), s.out, 1); err != nil || n != 1 || s.out[0].N != 1<<12 {
		t.Fatalf("read through the link: %d %v %+v", n, err, s.out[0])
	}
	if !bytes.Equal(s.buf.Bytes()[1<<12:], pattern(1<<12, 21)) {
		t.Fatal("the link does not hold the file's bytes")
	}
	// A write through the link shows through the first name.
	copy(s.buf.Bytes()[1<<12:], pattern(1<<12, 42))
	must(s.wr.Prep(fs.Req{File: fb, Off: 0, Buf: reg, Tag: 3}))
	must(0, s.wr.Submit())
	if n, err := s.wr.Wait(t.Context(), s.out, 1); err != nil || n != 1 || s.out[0].N != 1<<12 {
		t.Fatalf("write through the link: %d %v %+v", n, err, s.out[0])
	}
	clear(s.buf.Bytes())
	if cp := s.do(t, s.rd, 0, 0, 1<<12, 4); cp.N != 1<<12 || !bytes.Equal(s.buf.Bytes()[:1<<12], pattern(1<<12, 42)) {
		t.Fatalf("first name after a write through the link: %+v", cp)
	}
	if err := c.Hardlink("link-a", "link-b"); !errors.Is(err, os.ErrExist) {
		t.Errorf("Hardlink onto an existing name: %v, want ErrExist", err)
	}
	if err := c.Hardlink("link-missing", "link-c"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Hardlink of a missing file: %v, want ErrNotExist", err)
	}
	if err := c.Hardlink("", "link-d"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Hardlink with an empty name: %v, want ErrInvalid", err)
	}
}
