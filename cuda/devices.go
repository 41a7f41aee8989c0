package cuda

import "errors"

// ErrUnavailable reports that no GPU can be used here; the wrapped message
// says why (built without cgo, NVML library missing, no device, driver error).
var ErrUnavailable = errors.New("cuda: unavailable")

// GPU describes one NVIDIA GPU as NVML reports it.
type GPU struct {
	Index       int    // NVML index (the CUDA ordinal when CUDA_VISIBLE_DEVICES is unset)
	Name        string // product name, e.g. "NVIDIA H200"
	UUID        string // e.g. "GPU-..."
	PCIBusID    string // e.g. "00000000:18:00.0"; empty if NVML does not say
	MemoryTotal uint64 // bytes of device memory
	MemoryFree  uint64 // bytes free when queried
	Major       int    // compute capability major (9 for Hopper)
	Minor       int    // compute capability minor
	NVLinks     int    // NVLink links NVML reports as enabled (0 on PCIe-only parts)
}

// Arch returns the NVRTC architecture name for the device, e.g. "sm_90a" for
// Hopper (the "a" variant that enables wgmma and TMA multicast) or "sm_80".
func (g GPU) Arch() string {
	s := "sm_" + itoa(g.Major) + itoa(g.Minor)
	if g.Major == 9 && g.Minor == 0 || g.Major == 10 && g.Minor == 0 {
		s += "a"
	}
	return s
}

func itoa(v int) string {
	if v < 0 {
		return "-" + itoa(-v)
	}
	if v < 10 {
		return string(rune('0' + v))
	}
	return itoa(v/10) + itoa(v%10)
}
