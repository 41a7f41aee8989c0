package cuda

import (
	"errors"
	"fmt"
	"testing"
)

func TestArch(t *testing.T) {
	cases := map[[2]int]string{{9, 0}: "sm_90a", {8, 0}: "sm_80", {8, 9}: "sm_89", {10, 0}: "sm_100a", {12, 0}: "sm_120"}
	for cc, want := range cases {
		if got := (GPU{Major: cc[0], Minor: cc[1]}).Arch(); got != want {
			t.Errorf("Arch(%v) = %s, want %s", cc, got, want)
		}
	}
}

// TestDevicesNeverPanics runs real discovery twice, in every build (with or
// without cgo, NVML through go-nvml or dlopen, with or without a driver):
// each call answers with at least one GPU or ErrUnavailable (on a machine
// without a GPU the second call must not touch NVML again).
func TestDevicesNeverPanics(t *testing.T) {
	for range 2 {
		gpus, err := Devices()
		if err != nil {
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Devices: %v", err)
			}
			t.Logf("no GPU here: %v", err)
			continue
		}
		if len(gpus) == 0 {
			t.Fatal("no error and no GPU")
		}
	}
}

func ExampleGPU_Arch() {
	h200 := GPU{Name: "NVIDIA H200", Major: 9, Minor: 0}
	fmt.Println(h200.Arch())
	// Output: sm_90a
}
