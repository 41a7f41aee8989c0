package anchor

import (
	"testing"
	"time"
)

// TestBestOf: one warm-up call, then n timed calls, and the shortest of
// them is returned.
func TestBestOf(t *testing.T) {
	calls := 0
	d := BestOf(3, func() {
		calls++
		if calls == 3 {
			time.Sleep(2 * time.Millisecond)
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	})
	if calls != 4 {
		t.Fatalf("f called %d times, want 4 (warm-up + 3)", calls)
	}
	if d < 0.002 || d >= 0.02 {
		t.Fatalf("BestOf = %vs, want the 2 ms run", d)
	}
	if n := 0; MinTime(0, func() { n++ }) < 0 || n != 1 {
		t.Fatalf("MinTime(0) ran f %d times, want 1", n)
	}
}

// TestAnchorsRun: the anchors run on small sizes and take positive time.
func TestAnchorsRun(t *testing.T) {
	if d := MinTime(1, GEMM(8, 8, 16)); d <= 0 {
		t.Fatalf("GEMM anchor took %v", d)
	}
	if d := MinTime(1, Memcpy(1<<16)); d <= 0 {
		t.Fatalf("Memcpy anchor took %v", d)
	}
}
