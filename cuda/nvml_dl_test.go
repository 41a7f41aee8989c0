//go:build linux || darwin || freebsd || netbsd

package cuda

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"
)

// fakeNVML is a libnvidia-ml.so.1 stand-in: its entry points are C-callable
// purego callbacks, so loadNVML resolves and calls them exactly as it calls
// the real library. The callbacks are created once per process and answer
// for the fake installed by useFakeNVML.
type fakeNVML struct {
	initRet int32
	gpus    []fakeGPU
	lostAt  int             // GetHandleByIndex(lostAt) answers GPU_IS_LOST; -1: none
	missing map[string]bool // names Sym does not find
	calls   map[string]int
}

type fakeGPU struct {
	name, uuid, busID string
	total, free       uint64
	major, minor      int32
	links             int // enabled NVLinks; 0: NOT_SUPPORTED (a PCIe part)
}

// NVML return codes the fake answers.
const (
	fakeInvalidArgument = 2
	fakeNotSupported    = 3
	fakeDriverNotLoaded = 9
	fakeGPUIsLost       = 15
)

var (
	fakeMu     sync.Mutex
	fakeActive *fakeNVML
	fakeOnce   sync.Once
	fakeFns    map[string]uintptr
	fakeStrs   = map[int32][]byte{}
)

// dgxH200Fake answers as an 8-GPU DGX H200 does (the values of go-nvml's
// DGX H200 mock plus the bus ids and the 18 NVLinks of an SXM part).
func dgxH200Fake() *fakeNVML {
	f := &fakeNVML{lostAt: -1, missing: map[string]bool{}, calls: map[string]int{}}
	for i := range 8 {
		f.gpus = append(f.gpus, fakeGPU{
			name: "NVIDIA H200", uuid: fmt.Sprintf("GPU-%08x-0000-0000-0000-00000000000%d", 0xabc0+i, i),
			busID: "00000000:" + "18293a4b5c6d7e8f"[2*i:2*i+2] + ":00.0",
			total: 150754820096, free: 150754820096 - 1<<20, major: 9, minor: 0, links: 18,
		})
	}
	return f
}

func (f *fakeNVML) install(t *testing.T) {
	t.Helper()
	fakeMu.Lock()
	fakeActive = f
	fakeMu.Unlock()
	t.Cleanup(func() {
		fakeMu.Lock()
		fakeActive = nil
		fakeMu.Unlock()
	})
}

// Open implements Opener: only NVMLLibraryName exists.
func (f *fakeNVML) Open(name string) (Library, error) {
	if name != NVMLLibraryName {
		return nil, fmt.Errorf("%s: cannot open shared object file: No such file or directory", name)
	}
	return fakeNVMLLib{f}, nil
}

type fakeNVMLLib struct{ f *fakeNVML }

func (l fakeNVMLLib) Sym(name string) (uintptr, error) {
	p, ok := fakeCallbacks()[name]
	if !ok || l.f.missing[name] {
		return 0, fmt.Errorf("undefined symbol: %s", name)
	}
	return p, nil
}

func (fakeNVMLLib) Close() error { return nil }

// with runs fn on the installed fake, counting the call.
func with(name string, fn func(f *fakeNVML) int32) int32 {
	fakeMu.Lock()
	defer fakeMu.Unlock()
	if fakeActive == nil {
		return 999
	}
	fakeActive.calls[name]++
	return fn(fakeActive)
}

// withGPU is with for a call on the device handle h: an unknown handle is
// NVML_ERROR_INVALID_ARGUMENT, a known one runs fn on its GPU.
func withGPU(name string, h uintptr, fn func(g *fakeGPU) int32) int32 {
	return with(name, func(f *fakeNVML) int32 {
		g, ok := f.gpu(h)
		if !ok {
			return fakeInvalidArgument
		}
		return fn(g)
	})
}

func (f *fakeNVML) gpu(h uintptr) (*fakeGPU, bool) {
	if h < 1 || int(h) > len(f.gpus) {
		return nil, false
	}
	return &f.gpus[h-1], true
}

func putCString(p unsafe.Pointer, n uint32, s string) int32 {
	if uint32(len(s)) >= n {
		return 7 // NVML_ERROR_INSUFFICIENT_SIZE
	}
	b := unsafe.Slice((*byte)(p), n)
	copy(b, s)
	b[len(s)] = 0
	return nvmlSuccess
}

func fakeCallbacks() map[string]uintptr {
	fakeOnce.Do(func() {
		fakeFns = map[string]uintptr{}
		for name, fn := range map[string]any{
			"nvmlInit_v2": func() int32 { return with("Init", func(f *fakeNVML) int32 { return f.initRet }) },
			"nvmlErrorString": func(ret int32) unsafe.Pointer {
				fakeMu.Lock()
				defer fakeMu.Unlock()
				b, ok := fakeStrs[ret]
				if !ok {
					b = append([]byte(fmt.Sprintf("fake NVML error %d", ret)), 0)
					fakeStrs[ret] = b
				}
				return unsafe.Pointer(&b[0])
			},
			"nvmlDeviceGetCount_v2": func(p unsafe.Pointer) int32 {
				return with("GetCount", func(f *fakeNVML) int32 { *(*uint32)(p) = uint32(len(f.gpus)); return nvmlSuccess })
			},
			"nvmlDeviceGetHandleByIndex_v2": func(i uint32, p unsafe.Pointer) int32 {
				return with("GetHandleByIndex", func(f *fakeNVML) int32 {
					if int(i) == f.lostAt {
						return fakeGPUIsLost
					}
					if int(i) >= len(f.gpus) {
						return fakeInvalidArgument
					}
					*(*uintptr)(p) = uintptr(i) + 1
					return nvmlSuccess
				})
			},
			"nvmlDeviceGetName": func(h uintptr, p unsafe.Pointer, n uint32) int32 {
				return withGPU("GetName", h, func(g *fakeGPU) int32 {
					return putCString(p, n, g.name)
				})
			},
			"nvmlDeviceGetUUID": func(h uintptr, p unsafe.Pointer, n uint32) int32 {
				return withGPU("GetUUID", h, func(g *fakeGPU) int32 {
					return putCString(p, n, g.uuid)
				})
			},
			"nvmlDeviceGetMemoryInfo": func(h uintptr, p unsafe.Pointer) int32 {
				return withGPU("GetMemoryInfo", h, func(g *fakeGPU) int32 {
					*(*nvmlMemory)(p) = nvmlMemory{Total: g.total, Free: g.free, Used: g.total - g.free}
					return nvmlSuccess
				})
			},
			"nvmlDeviceGetCudaComputeCapability": func(h uintptr, major, minor unsafe.Pointer) int32 {
				return withGPU("GetCudaComputeCapability", h, func(g *fakeGPU) int32 {
					*(*int32)(major), *(*int32)(minor) = g.major, g.minor
					return nvmlSuccess
				})
			},
			"nvmlDeviceGetPciInfo_v3": func(h uintptr, p unsafe.Pointer) int32 {
				return withGPU("GetPciInfo", h, func(g *fakeGPU) int32 {
					var pci nvmlPciInfo
					copy(pci.BusID[:], g.busID)
					copy(pci.BusIDLegacy[:], g.busID[4:])
					pci.PciDeviceID = 0x233510de
					*(*nvmlPciInfo)(p) = pci
					return nvmlSuccess
				})
			},
			"nvmlDeviceGetNvLinkState": func(h uintptr, link uint32, p unsafe.Pointer) int32 {
				return with("GetNvLinkState", func(f *fakeNVML) int32 {
					g, ok := f.gpu(h)
					switch {
					case !ok:
						return fakeInvalidArgument
					case g.links == 0:
						return fakeNotSupported
					case int(link) >= g.links:
						return fakeInvalidArgument
					}
					*(*int32)(p) = nvmlFeatureEnabled
					return nvmlSuccess
				})
			},
		} {
			fakeFns[name] = purego.NewCallback(fn)
		}
	})
	return fakeFns
}

// TestNVMLDGXH200 runs discovery through the dlopen path against the fake
// DGX H200: the same fields TestListDevicesDGXH200 checks on go-nvml's mock
// (under -tags nvml).
func TestNVMLDGXH200(t *testing.T) {
	f := dgxH200Fake()
	f.install(t)
	l, err := loadNVML(f)
	if err != nil {
		t.Fatal(err)
	}
	gpus, err := l.devices()
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 8 {
		t.Fatalf("%d GPUs, want 8", len(gpus))
	}
	for i, g := range gpus {
		if g.Index != i || g.Name != "NVIDIA H200" || g.Major != 9 || g.Minor != 0 || g.Arch() != "sm_90a" {
			t.Errorf("GPU %d: %+v", i, g)
		}
		if g.MemoryTotal != 150754820096 || g.MemoryFree != 150754820096-1<<20 {
			t.Errorf("GPU %d: memory %d total %d free", i, g.MemoryTotal, g.MemoryFree)
		}
		if g.NVLinks != 18 {
			t.Errorf("GPU %d: %d NVLinks, want 18", i, g.NVLinks)
		}
		if want := "00000000:" + "18293a4b5c6d7e8f"[2*i:2*i+2] + ":00.0"; g.PCIBusID != want {
			t.Errorf("GPU %d: bus id %q, want %q", i, g.PCIBusID, want)
		}
		if want := fmt.Sprintf("GPU-%08x-0000-0000-0000-00000000000%d", 0xabc0+i, i); g.UUID != want {
			t.Errorf("GPU %d: UUID %q, want %q", i, g.UUID, want)
		}
	}
	if f.calls["Init"] != 1 {
		t.Errorf("nvmlInit called %d times", f.calls["Init"])
	}
}

// TestNVMLPCIePart: a GPU without NVLink (NOT_SUPPORTED) reports 0 links,
// and missing optional entry points leave their fields zero.
func TestNVMLPCIePart(t *testing.T) {
	f := dgxH200Fake()
	f.gpus = f.gpus[:1]
	f.gpus[0].links = 0
	f.missing["nvmlDeviceGetPciInfo_v3"] = true
	f.missing["nvmlDeviceGetUUID"] = true
	f.install(t)
	l, err := loadNVML(f)
	if err != nil {
		t.Fatal(err)
	}
	gpus, err := l.devices()
	if err != nil || len(gpus) != 1 {
		t.Fatalf("devices: %v, %v", gpus, err)
	}
	if g := gpus[0]; g.NVLinks != 0 || g.PCIBusID != "" || g.UUID != "" || g.Name != "NVIDIA H200" || g.MemoryTotal == 0 {
		t.Errorf("PCIe GPU without optional entry points: %+v", g)
	}
}

// TestNVMLFailedInitIsGated: a failed init is reported with NVML's text and
// no other NVML function is called after it.
func TestNVMLFailedInitIsGated(t *testing.T) {
	f := dgxH200Fake()
	f.initRet = fakeDriverNotLoaded
	f.install(t)
	_, err := loadNVML(f)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "nvml.Init: fake NVML error 9") {
		t.Fatalf("err %v, want ErrUnavailable with NVML's message", err)
	}
	for name, n := range f.calls {
		if name != "Init" && n > 0 {
			t.Errorf("%s called %d times after a failed init", name, n)
		}
	}
}

func TestNVMLLoadFailures(t *testing.T) {
	_, err := loadNVML(failNVMLOpener{})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "libnvidia-ml.so.1 not found (no NVIDIA driver installed)") {
		t.Errorf("no library: %v", err)
	}
	if _, err := loadNVML(nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("nil opener: %v", err)
	}
	f := dgxH200Fake()
	f.missing["nvmlDeviceGetCount_v2"] = true
	f.install(t)
	if _, err := loadNVML(f); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "lacks nvmlDeviceGetCount_v2") {
		t.Errorf("missing required symbol: %v", err)
	}
	if f.calls["Init"] != 0 {
		t.Errorf("nvmlInit called with a required symbol missing")
	}
}

func TestNVMLNoGPU(t *testing.T) {
	f := dgxH200Fake()
	f.gpus = nil
	f.install(t)
	l, err := loadNVML(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.devices(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no GPU") {
		t.Fatalf("zero devices: %v", err)
	}
}

// TestNVMLLostGPU: a device NVML cannot open fails discovery with an error
// that wraps ErrUnavailable and names the device.
func TestNVMLLostGPU(t *testing.T) {
	f := dgxH200Fake()
	f.lostAt = 3
	f.install(t)
	l, err := loadNVML(f)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.devices()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "DeviceGetHandleByIndex(3)") || !strings.Contains(err.Error(), "fake NVML error 15") {
		t.Fatalf("lost GPU: err %v, want ErrUnavailable naming device 3", err)
	}
}

type failNVMLOpener struct{}

func (failNVMLOpener) Open(name string) (Library, error) {
	return nil, fmt.Errorf("%s: cannot open shared object file: No such file or directory", name)
}
