//go:build nvml && cgo

package cuda

import (
	"fmt"
	"strings"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

var (
	nvmlOnce sync.Once
	nvmlLib  nvml.Interface
	nvmlErr  error
)

// Devices lists the GPUs of this machine through NVML (libnvidia-ml.so.1,
// loaded at run time) bound by github.com/NVIDIA/go-nvml: the build with
// -tags nvml and cgo (without them Devices loads NVML with purego, with
// the same results). NVML is initialised once per process; if that fails,
// every call returns the same error wrapping ErrUnavailable and NVML is never
// touched again (go-nvml would kill the process). Every error wraps
// ErrUnavailable, including a device NVML cannot open (e.g. "GPU is lost").
func Devices() ([]GPU, error) {
	nvmlOnce.Do(func() {
		lib := nvml.New()
		if err := initNVML(lib); err != nil {
			nvmlErr = err
			return
		}
		nvmlLib = lib
	})
	if nvmlErr != nil {
		return nil, nvmlErr
	}
	return listDevices(nvmlLib)
}

// initNVML calls Init and translates its failure, recovering from a panic
// inside go-nvml (it panics when the library cannot be loaded at all).
func initNVML(lib nvml.Interface) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: NVML failed to load: %v", ErrUnavailable, r)
		}
	}()
	if ret := lib.Init(); ret != nvml.SUCCESS {
		if ret == nvml.ERROR_LIBRARY_NOT_FOUND {
			return fmt.Errorf("%w: libnvidia-ml.so.1 not found (no NVIDIA driver installed)", ErrUnavailable)
		}
		return fmt.Errorf("%w: nvml.Init: %s", ErrUnavailable, nvmlError(lib, ret))
	}
	return nil
}

// listDevices queries an initialised NVML. It is separate from Devices so
// tests can run it against go-nvml's DGX mocks.
func listDevices(lib nvml.Interface) ([]GPU, error) {
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("%w: nvml.DeviceGetCount: %s", ErrUnavailable, nvmlError(lib, ret))
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: NVML sees no GPU", ErrUnavailable)
	}
	gpus := make([]GPU, 0, n)
	for i := 0; i < n; i++ {
		d, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("%w: nvml.DeviceGetHandleByIndex(%d): %s", ErrUnavailable, i, nvmlError(lib, ret))
		}
		g := GPU{Index: i}
		if g.Name, ret = d.GetName(); ret != nvml.SUCCESS {
			return nil, fmt.Errorf("%w: device %d: GetName: %s", ErrUnavailable, i, nvmlError(lib, ret))
		}
		g.UUID, _ = d.GetUUID()
		if mem, ret := d.GetMemoryInfo(); ret == nvml.SUCCESS {
			g.MemoryTotal, g.MemoryFree = mem.Total, mem.Free
		}
		if maj, min, ret := d.GetCudaComputeCapability(); ret == nvml.SUCCESS {
			g.Major, g.Minor = maj, min
		}
		if pci, ret := d.GetPciInfo(); ret == nvml.SUCCESS {
			g.PCIBusID = cString(pci.BusId[:])
		}
		for link := 0; link < nvml.NVLINK_MAX_LINKS; link++ {
			st, ret := d.GetNvLinkState(link)
			if ret != nvml.SUCCESS {
				break // NOT_SUPPORTED on PCIe parts, INVALID_ARGUMENT past the last link
			}
			if st == nvml.FEATURE_ENABLED {
				g.NVLinks++
			}
		}
		gpus = append(gpus, g)
	}
	return gpus, nil
}

func nvmlError(lib nvml.Interface, ret nvml.Return) string {
	if s := lib.ErrorString(ret); s != "" {
		return s
	}
	return fmt.Sprintf("NVML error %d", int(ret))
}

func cString(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}
