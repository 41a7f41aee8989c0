package platform

import (
	"fmt"
	"runtime"
	"testing"
)

func TestCPU(t *testing.T) {
	f := CPU()
	if f.Arch != runtime.GOARCH {
		t.Fatalf("arch %s", f.Arch)
	}
	if f.AVX512F && !f.AVX2 {
		t.Error("AVX-512F without AVX2 is not a real CPU")
	}
	t.Logf("features: %v", f.Names())
}

func TestIOURing(t *testing.T) {
	// Either answer is legitimate; a refusal must carry a reason.
	if err := IOURing(); err != nil {
		if err.Error() == "" {
			t.Fatal("empty reason")
		}
		t.Logf("io_uring unavailable: %v", err)
	}
}

func TestNames(t *testing.T) {
	f := CPUFeatures{AVX2: true, FMA: true, F16C: true, AVX512F: true, AVX512BW: true, AVX512DQ: true}
	got := fmt.Sprint(f.Names())
	if want := "[AVX2 FMA F16C AVX-512F AVX-512BW AVX-512DQ]"; got != want {
		t.Fatalf("Names = %s, want %s", got, want)
	}
}
