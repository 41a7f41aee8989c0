package cudatest_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/cuda"
	"github.com/fireflyer-go/fireflyer/cuda/cudatest"
)

// recorder is a testing.TB that records Skipf/Fatalf and stops the
// goroutine as the real ones do.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func run(f func(tb testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// TestRequireGPUSkipsWithoutDriver checks the skip behaviour every GPU test
// relies on: without a driver it skips with the loader's reason; with
// FIREFLYER_REQUIRE_GPU=1 it fails instead.
func TestRequireGPUSkipsWithoutDriver(t *testing.T) {
	if c, err := cuda.Open(0); err == nil {
		c.Close()
		t.Skip("a GPU is present; the skip path cannot be exercised here")
	}
	t.Setenv(cudatest.EnvRequireGPU, "")
	r := run(func(tb testing.TB) { cudatest.RequireGPU(tb) })
	if !strings.HasPrefix(r.skipped, "skipping GPU test: cuda: unavailable: cannot load the CUDA driver") || r.failed != "" {
		t.Errorf("skip message %q, failure %q", r.skipped, r.failed)
	}
	t.Setenv(cudatest.EnvRequireGPU, "1")
	r = run(func(tb testing.TB) { cudatest.RequireGPU(tb) })
	if !strings.Contains(r.failed, "GPU required (FIREFLYER_REQUIRE_GPU=1) but unavailable: cuda: unavailable") || r.skipped != "" {
		t.Errorf("required: failure %q, skip %q", r.failed, r.skipped)
	}
}

func TestRequireNVRTCSkips(t *testing.T) {
	if _, err := cuda.SystemNVRTC(); err == nil {
		t.Skip("NVRTC is present here")
	}
	t.Setenv(cudatest.EnvRequireGPU, "")
	r := run(func(tb testing.TB) { cudatest.RequireNVRTC(tb) })
	if !strings.Contains(r.skipped, "cannot load NVRTC") || !strings.Contains(r.skipped, "libnvrtc.so.13") {
		t.Errorf("skip message %q", r.skipped)
	}
}
