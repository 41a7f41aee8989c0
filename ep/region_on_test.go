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
