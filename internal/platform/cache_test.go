package platform

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseCacheSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{{"2048K", 2 << 20}, {"1M", 1 << 20}, {"512", 512}, {"", 0}, {"12Q", 0}, {"-4K", 0}} {
		if got := parseCacheSize(c.in); got != c.want {
			t.Errorf("parseCacheSize(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestProbeL2(t *testing.T) {
	dir := t.TempDir()
	write := func(idx, name, v string) {
		p := filepath.Join(dir, idx)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := probeL2(dir); got != 0 {
		t.Fatalf("empty directory: %d, want 0", got)
	}
	write("index0", "level", "1")
	write("index0", "type", "Data")
	write("index0", "size", "48K")
	write("index1", "level", "1")
	write("index1", "type", "Instruction")
	write("index1", "size", "32K")
	write("index2", "level", "2")
	write("index2", "type", "Unified")
	write("index2", "size", "2048K")
	if got := probeL2(dir); got != 2<<20 {
		t.Fatalf("probeL2 = %d, want %d", got, 2<<20)
	}
}
