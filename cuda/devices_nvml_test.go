//go:build nvml && cgo

package cuda

import (
	"errors"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// dgxH200 returns go-nvml's DGX H200 mock with the calls its fake leaves
// unset filled in the way an SXM H200 answers: 18 NVLinks, all enabled, and a
// PCI bus id per GPU.
func dgxH200() *mock.Interface {
	s := dgxh200.New()
	for i, d := range s.Devices {
		md := d.(*server.Device)
		busID := "00000000:" + string("18293a4b5c6d7e8f"[2*i:2*i+2]) + ":00.0"
		md.GetNvLinkStateFunc = func(link int) (nvml.EnableState, nvml.Return) {
			if link >= 18 {
				return 0, nvml.ERROR_INVALID_ARGUMENT
			}
			return nvml.FEATURE_ENABLED, nvml.SUCCESS
		}
		md.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
			var p nvml.PciInfo
			for j := 0; j < len(busID); j++ {
				p.BusId[j] = int8(busID[j])
			}
			return p, nvml.SUCCESS
		}
	}
	s.ErrorStringFunc = func(r nvml.Return) string { return "mock error" }
	return &s.Interface
}

func TestListDevicesDGXH200(t *testing.T) {
	lib := dgxH200()
	if ret := lib.Init(); ret != nvml.SUCCESS {
		t.Fatalf("mock Init: %v", ret)
	}
	gpus, err := listDevices(lib)
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 8 {
		t.Fatalf("%d GPUs, want 8", len(gpus))
	}
	for i, g := range gpus {
		if g.Index != i || !strings.Contains(g.Name, "H200") || g.Major != 9 || g.Minor != 0 {
			t.Errorf("GPU %d: %+v", i, g)
		}
		if g.MemoryTotal < 140<<30 || g.MemoryTotal > 144<<30 {
			t.Errorf("GPU %d: memory %d bytes, want about 141 GiB", i, g.MemoryTotal)
		}
		if g.NVLinks != 18 {
			t.Errorf("GPU %d: %d NVLinks, want 18", i, g.NVLinks)
		}
		if g.Arch() != "sm_90a" {
			t.Errorf("GPU %d: arch %s", i, g.Arch())
		}
		if want := "00000000:" + "18293a4b5c6d7e8f"[2*i:2*i+2] + ":00.0"; g.PCIBusID != want {
			t.Errorf("GPU %d: bus id %q, want %q", i, g.PCIBusID, want)
		}
		if g.UUID == "" {
			t.Errorf("GPU %d: no UUID", i)
		}
	}
}

// TestFailedInitIsGated checks that a failed Init is reported and that no
// other NVML call follows it: every other mock function is nil, so a call
// would panic.
func TestFailedInitIsGated(t *testing.T) {
	for _, ret := range []nvml.Return{nvml.ERROR_LIBRARY_NOT_FOUND, nvml.ERROR_DRIVER_NOT_LOADED} {
		lib := &mock.Interface{
			InitFunc:        func() nvml.Return { return ret },
			ErrorStringFunc: func(nvml.Return) string { return "Driver Not Loaded" },
		}
		err := initNVML(lib)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Init %v: err %v, want ErrUnavailable", ret, err)
		}
		if len(lib.InitCalls()) != 1 {
			t.Errorf("Init called %d times", len(lib.InitCalls()))
		}
	}
	panicky := &mock.Interface{InitFunc: func() nvml.Return { panic("libnvidia-ml.so.1: cannot open shared object file") }}
	if err := initNVML(panicky); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("panicking Init: %v", err)
	}
}

func TestNoGPU(t *testing.T) {
	lib := &mock.Interface{
		DeviceGetCountFunc: func() (int, nvml.Return) { return 0, nvml.SUCCESS },
	}
	if _, err := listDevices(lib); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("zero devices: %v", err)
	}
}

// TestLostGPU: a device NVML cannot open fails discovery with an error that
// wraps ErrUnavailable and names the device (it used to be a bare error).
func TestLostGPU(t *testing.T) {
	lib := dgxH200()
	lib.DeviceGetHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
		return nil, nvml.ERROR_GPU_IS_LOST
	}
	_, err := listDevices(lib)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "DeviceGetHandleByIndex(0)") {
		t.Fatalf("lost GPU: err %v, want ErrUnavailable naming device 0", err)
	}
}
