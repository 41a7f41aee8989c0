package ep

import (
	"errors"
	"testing"
	"unsafe"
)

// TestNewRegionOn: a region over transport-allocated memory is zeroed, its
// counters work, Free calls the release function once, and memory that is
// not 64-byte aligned or sized is refused with ErrConfig.
func TestNewRegionOn(t *testing.T) {
	raw := make([]byte, 64*5)
	skip := 0
	if a := uintptr(unsafe.Pointer(&raw[0])) % 64; a != 0 {
		skip = int(64 - a)
	}
	mem := raw[skip : skip+256]
	for i := range mem {
		mem[i] = 0xff
	}
	released := 0
	r, err := NewRegionOn(mem, func() { released++ })
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 256 || r.Load(8) != 0 || mem[255] != 0 {
		t.Fatalf("region of %d bytes, word 1 = %d, last byte %#x: want 256 zeroed bytes", r.Len(), r.Load(8), mem[255])
	}
	if err := r.Add(8, 5); err != nil || r.Load(8) != 5 {
		t.Fatalf("Add: %v, word 1 = %d", err, r.Load(8))
	}
	r.Free()
	r.Free()
	if released != 1 {
		t.Errorf("release called %d times, want 1", released)
	}
	for _, bad := range [][]byte{raw[skip : skip+100], raw[skip+8 : skip+8+64]} {
		if _, err := NewRegionOn(bad, nil); !errors.Is(err, ErrConfig) {
			t.Errorf("NewRegionOn(%d bytes at offset %d): %v, want ErrConfig", len(bad), uintptr(unsafe.Pointer(&bad[0]))%64, err)
		}
	}
	if r, err := NewRegionOn(nil, nil); err != nil || r.Len() != 0 {
		t.Errorf("empty region: %v", err)
	}
}

// TestRegionWriteLarge: a gathered Write above streamWriteMin (the
// streaming copy) and one below it land exactly at unaligned offsets, the
// bytes around them untouched, and one past the end fails with ErrRange.
func TestRegionWriteLarge(t *testing.T) {
	const size = 3 * streamWriteMin
	r := NewRegion(size)
	defer r.Free()
	want := make([]byte, size)
	for _, c := range []struct{ off, n, parts int }{{13, streamWriteMin + 4099, 3}, {size - 5000, 4999, 2}, {streamWriteMin + 8191, streamWriteMin, 7}} {
		src := make([]byte, c.n)
		for i := range src {
			src[i] = byte(i*31 + c.off)
		}
		var bufs [][]byte
		for i := 0; i < c.parts; i++ {
			bufs = append(bufs, src[i*c.n/c.parts:(i+1)*c.n/c.parts])
		}
		if err := r.Write(c.off, bufs...); err != nil {
			t.Fatalf("Write(%d, %d bytes): %v", c.off, c.n, err)
		}
		copy(want[c.off:], src)
		if got := r.Bytes(); string(got) != string(want) {
			i := 0
			for got[i] == want[i] {
				i++
			}
			t.Fatalf("after Write(%d, %d bytes): byte %d is %#x, want %#x", c.off, c.n, i, got[i], want[i])
		}
	}
	if err := r.Write(size-streamWriteMin+1, make([]byte, streamWriteMin)); !errors.Is(err, ErrRange) {
		t.Errorf("Write past the end: %v, want ErrRange", err)
	}
}
