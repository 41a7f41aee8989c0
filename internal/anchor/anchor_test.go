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

// TestAlternate: each function warms up once and then runs reps times in
// each of the rounds; the results come back in the order given.
func TestAlternate(t *testing.T) {
	var a, b int
	best := Alternate(2, 3, func() { a++ }, func() { b++; time.Sleep(time.Millisecond) })
	if a != 7 || b != 7 {
		t.Fatalf("calls %d and %d, want 7 each (1 warm-up + 2 rounds × 3)", a, b)
	}
	if len(best) != 2 || best[1] < 0.001 || best[0] >= best[1] {
		t.Fatalf("Alternate = %v, want [fast, ≥1ms]", best)
	}
	if n := 0; len(Alternate(0, 0, func() { n++ })) != 1 || n != 2 {
		t.Fatalf("Alternate(0, 0) ran f %d times, want 2 (warm-up + one round of one)", n)
	}
}
