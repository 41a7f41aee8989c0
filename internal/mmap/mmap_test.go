package mmap

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

func TestAlloc(t *testing.T) {
	for _, n := range []int{0, 1, 4096, Threshold, Threshold + 12345} {
		b := Alloc(n)
		if len(b.Bytes) != n {
			t.Fatalf("Alloc(%d): len %d", n, len(b.Bytes))
		}
		for i := 0; i < n; i += 4093 {
			if b.Bytes[i] != 0 {
				t.Fatalf("Alloc(%d): byte %d not zero", n, i)
			}
			b.Bytes[i] = 1
		}
		b.Free()
		b.Free() // idempotent
	}
}

func TestMapHuge(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no mappings here")
	}
	for _, n := range []int{1, 4096, 5000, HugePage, 3*HugePage + 17} {
		b, err := Map(n, Opts{Huge: true, Node: -1})
		if err != nil {
			t.Fatalf("Map(%d): %v", n, err)
		}
		if len(b) != n || cap(b) != n {
			t.Fatalf("Map(%d): len %d cap %d", n, len(b), cap(b))
		}
		addr := uintptr(unsafe.Pointer(&b[0]))
		if addr%uintptr(os.Getpagesize()) != 0 || n >= HugePage && addr%HugePage != 0 {
			t.Fatalf("Map(%d): address %#x not aligned", n, addr)
		}
		b[0], b[n-1] = 1, 2
		if err := Unmap(b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Map(0, Opts{Node: -1}); err == nil {
		t.Fatal("Map(0) succeeded")
	}
}

// TestNUMABind maps memory bound to node 0, touches it, and finds the
// binding and the pages on node 0 in /proc/self/numa_maps.
func TestNUMABind(t *testing.T) {
	if runtime.GOOS != "linux" {
		if _, err := Map(4096, Opts{Node: 0}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Map node 0 off Linux: %v, want ErrUnavailable", err)
		}
		return
	}
	if _, err := os.Stat("/sys/devices/system/node/node0"); err != nil {
		t.Skip("no NUMA topology in /sys")
	}
	const n = 64 << 10
	b, err := Map(n, Opts{Node: 0})
	if err != nil {
		t.Fatalf("Map node 0: %v", err)
	}
	defer Unmap(b)
	for i := 0; i < n; i += 4096 {
		b[i] = 1
	}
	maps, err := os.ReadFile("/proc/self/numa_maps")
	if err != nil {
		t.Skipf("no numa_maps: %v", err)
	}
	want := fmt.Sprintf("%x ", uintptr(unsafe.Pointer(&b[0])))
	var line string
	for _, l := range strings.Split(string(maps), "\n") {
		if strings.HasPrefix(l, want) {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("mapping at %s not in numa_maps", want)
	}
	if !strings.Contains(line, " bind:0") || !strings.Contains(line, " N0=16") {
		t.Fatalf("numa_maps line %q: want policy bind:0 and 16 pages on N0", line)
	}
	_, err = Map(n, Opts{Node: 999})
	if !errors.Is(err, ErrNoNode) || !strings.Contains(err.Error(), "node 999") {
		t.Fatalf("Map node 999: %v, want ErrNoNode naming the node", err)
	}
}

func TestMapFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no mappings here")
	}
	p := t.TempDir() + "/f"
	want := []byte("hello, mapped file")
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := MapFile(f, len(want))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(want) {
		t.Fatalf("mapped %q", b)
	}
	if err := Unmap(b); err != nil {
		t.Fatal(err)
	}
}
