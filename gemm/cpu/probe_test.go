package cpu_test

import (
	"context"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/gemmtest"
	"github.com/fireflyer-go/fireflyer/internal/gemm/kernels"
)

func threadTime() float64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return float64(ts.Sec) + float64(ts.Nsec)*1e-9
}

// minTime returns the least thread CPU time of reps runs of f (f must stay
// on the calling goroutine).
func minTime(reps int, f func()) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	best := 1e9
	for i := 0; i < reps; i++ {
		t := threadTime()
		f()
		if e := threadTime() - t; e < best {
			best = e
		}
	}
	return best
}

func TestProbe(t *testing.T) {
	if os.Getenv("GEMM_PROBE") == "" {
		t.Skip()
	}
	peak := kernels.PeakLoop(1) * 100000 / minTime(20, func() { kernels.PeakLoop(100000) }) / 1e9
	t.Logf("peak 1 thread %.1f", peak)
	for _, w := range []int{1} {
		for _, s := range benchShapes() {
			for _, tl := range [][3]int{{256, 192, 4 << 20}, {256, 384, 4 << 20}, {128, 192, 4 << 20}, {256, 192, 16 << 20}} {
				cpu.SetTiles(tl[0], tl[1], tl[2])
				p := gemmtest.NewProblem(1, s, gemm.QuantOptions{})
				d := gemmtest.NewOut(s.M, s.N, 0, false, 0)
				be := cpu.NewWithOptions(cpu.Options{Workers: w})
				f := func() { _ = be.GemmNT(context.Background(), p.A, p.B, d) }
				f()
				g := 2 * float64(s.M*s.N*s.K) / minTime(15, f) / 1e9
				t.Logf("tiles %v workers=%d %v: %.1f GFLOP/s (%.0f%% of 1-thread peak x workers)", tl, w, s, g, 100*g/peak/float64(w))
			}
		}
	}
}

func TestProbeProfile(t *testing.T) {
	if os.Getenv("GEMM_PROBE_PROF") == "" {
		t.Skip()
	}
	for _, s := range benchShapes() {
		p := gemmtest.NewProblem(1, s, gemm.QuantOptions{})
		d := gemmtest.NewOut(s.M, s.N, 0, false, 0)
		be := cpu.NewWithOptions(cpu.Options{Workers: 1})
		for i := 0; i < 10; i++ {
			_ = be.GemmNT(context.Background(), p.A, p.B, d)
		}
	}
}
