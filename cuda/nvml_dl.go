package cuda

import (
	"fmt"
	"strings"
	"unsafe"
)

// GPU discovery through NVML loaded at run time with dlopen (the Opener of
// the driver and NVRTC), without cgo and without NVML's C header: the ten
// entry points Devices needs, called with the C ABI. Names, argument lists
// and struct layouts follow nvml.h (NVML API v12/v13, as go-nvml v0.13.4-1
// binds it); the versioned names are preferred, as go-nvml does.

// NVMLLibraryName is the NVML shared library Devices loads.
const NVMLLibraryName = "libnvidia-ml.so.1"

// nvmlReturn_t values Devices tells apart.
const (
	nvmlSuccess        = 0
	nvmlFeatureEnabled = 1 // nvmlEnableState_t NVML_FEATURE_ENABLED
)

// Sizes from nvml.h.
const (
	nvmlDeviceNameBufferSize = 96 // NVML_DEVICE_NAME_V2_BUFFER_SIZE
	nvmlDeviceUUIDBufferSize = 96 // NVML_DEVICE_UUID_V2_BUFFER_SIZE
	nvmlNVLinkMaxLinks       = 36 // NVML_NVLINK_MAX_LINKS
)

// nvmlMemory is nvmlMemory_t (v1): bytes total, free, used.
type nvmlMemory struct{ Total, Free, Used uint64 }

// nvmlPciInfo is nvmlPciInfo_t, the struct of nvmlDeviceGetPciInfo_v3 and
// _v2: the 16-byte legacy bus id, domain, bus, device, PCI device and
// subsystem ids, then the 32-byte bus id.
type nvmlPciInfo struct {
	BusIDLegacy                                      [16]byte
	Domain, Bus, Device, PciDeviceID, PciSubSystemID uint32
	BusID                                            [32]byte
}

// NVML entry points, in nvmlSymbols order.
const (
	nvmlInit = iota
	nvmlErrorString
	nvmlDeviceGetCount
	nvmlDeviceGetHandleByIndex
	nvmlDeviceGetName
	nvmlDeviceGetUUID
	nvmlDeviceGetMemoryInfo
	nvmlDeviceGetCudaComputeCapability
	nvmlDeviceGetPciInfo
	nvmlDeviceGetNvLinkState
	numNVMLSymbols
)

// nvmlSymbols lists, per entry point, the exported names tried in order
// and whether discovery can do without it (the fields it fills stay zero).
var nvmlSymbols = [numNVMLSymbols]struct {
	names    []string
	optional bool
}{
	nvmlInit:                           {names: []string{"nvmlInit_v2", "nvmlInit"}},
	nvmlErrorString:                    {names: []string{"nvmlErrorString"}, optional: true},
	nvmlDeviceGetCount:                 {names: []string{"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"}},
	nvmlDeviceGetHandleByIndex:         {names: []string{"nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex"}},
	nvmlDeviceGetName:                  {names: []string{"nvmlDeviceGetName"}},
	nvmlDeviceGetUUID:                  {names: []string{"nvmlDeviceGetUUID"}, optional: true},
	nvmlDeviceGetMemoryInfo:            {names: []string{"nvmlDeviceGetMemoryInfo"}, optional: true},
	nvmlDeviceGetCudaComputeCapability: {names: []string{"nvmlDeviceGetCudaComputeCapability"}, optional: true},
	nvmlDeviceGetPciInfo:               {names: []string{"nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2"}, optional: true},
	nvmlDeviceGetNvLinkState:           {names: []string{"nvmlDeviceGetNvLinkState"}, optional: true},
}

// dlNVML is an opened and initialised NVML.
type dlNVML struct {
	lib Library
	fns [numNVMLSymbols]uintptr
}

// loadNVML opens NVMLLibraryName through op, resolves the entry points and
// calls nvmlInit. Every error wraps ErrUnavailable. After a failed init no
// other NVML function is called.
func loadNVML(op Opener) (*dlNVML, error) {
	if op == nil {
		return nil, fmt.Errorf("%w: no library opener", ErrUnavailable)
	}
	lib, err := op.Open(NVMLLibraryName)
	if err != nil {
		if strings.Contains(err.Error(), "No such file") {
			return nil, fmt.Errorf("%w: %s not found (no NVIDIA driver installed)", ErrUnavailable, NVMLLibraryName)
		}
		return nil, fmt.Errorf("%w: cannot load %s: %v", ErrUnavailable, NVMLLibraryName, err)
	}
	l := &dlNVML{lib: lib}
	var missing []string
	for i, s := range nvmlSymbols {
		for _, n := range s.names {
			if p, err := lib.Sym(n); err == nil && p != 0 {
				l.fns[i] = p
				break
			}
		}
		if l.fns[i] == 0 && !s.optional {
			missing = append(missing, s.names[0])
		}
	}
	if len(missing) > 0 {
		lib.Close()
		return nil, fmt.Errorf("%w: %s lacks %s (driver too old?)", ErrUnavailable, NVMLLibraryName, strings.Join(missing, ", "))
	}
	if ret := ccall(l.fns[nvmlInit]); ret != nvmlSuccess {
		err := fmt.Errorf("%w: nvml.Init: %s", ErrUnavailable, l.errorString(ret))
		lib.Close()
		return nil, err
	}
	return l, nil
}

// errorString returns nvmlErrorString(ret), or the number when NVML has no
// text for it.
func (l *dlNVML) errorString(ret int32) string {
	if fn := l.fns[nvmlErrorString]; fn != 0 {
		if p := ccallPtr(fn, uintptr(ret)); p != 0 {
			if s := goString(*(*unsafe.Pointer)(unsafe.Pointer(&p))); s != "" {
				return s
			}
		}
	}
	return fmt.Sprintf("NVML error %d", ret)
}

// call runs entry point id; an optional one that is absent answers
// NVML_ERROR_FUNCTION_NOT_FOUND (13).
func (l *dlNVML) call(id int, args ...uintptr) int32 {
	fn := l.fns[id]
	if fn == 0 {
		return 13
	}
	return ccall(fn, args...)
}

// devices queries the initialised NVML as listDevices does for go-nvml:
// name, UUID, memory, compute capability, PCI bus id and enabled NVLinks of
// every device. Errors wrap ErrUnavailable.
func (l *dlNVML) devices() ([]GPU, error) {
	var n uint32
	if ret := l.call(nvmlDeviceGetCount, uintptr(unsafe.Pointer(&n))); ret != nvmlSuccess {
		return nil, fmt.Errorf("%w: nvml.DeviceGetCount: %s", ErrUnavailable, l.errorString(ret))
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: NVML sees no GPU", ErrUnavailable)
	}
	if n > 1<<16 {
		return nil, fmt.Errorf("%w: NVML reports %d devices", ErrUnavailable, n)
	}
	gpus := make([]GPU, 0, n)
	for i := range int(n) {
		var d uintptr // nvmlDevice_t
		if ret := l.call(nvmlDeviceGetHandleByIndex, uintptr(i), uintptr(unsafe.Pointer(&d))); ret != nvmlSuccess {
			return nil, fmt.Errorf("%w: nvml.DeviceGetHandleByIndex(%d): %s", ErrUnavailable, i, l.errorString(ret))
		}
		g := GPU{Index: i}
		var name [nvmlDeviceNameBufferSize]byte
		if ret := l.call(nvmlDeviceGetName, d, uintptr(unsafe.Pointer(&name[0])), uintptr(len(name))); ret != nvmlSuccess {
			return nil, fmt.Errorf("%w: device %d: GetName: %s", ErrUnavailable, i, l.errorString(ret))
		}
		g.Name = cBytes(name[:])
		var uuid [nvmlDeviceUUIDBufferSize]byte
		if l.call(nvmlDeviceGetUUID, d, uintptr(unsafe.Pointer(&uuid[0])), uintptr(len(uuid))) == nvmlSuccess {
			g.UUID = cBytes(uuid[:])
		}
		var mem nvmlMemory
		if l.call(nvmlDeviceGetMemoryInfo, d, uintptr(unsafe.Pointer(&mem))) == nvmlSuccess {
			g.MemoryTotal, g.MemoryFree = mem.Total, mem.Free
		}
		var major, minor int32
		if l.call(nvmlDeviceGetCudaComputeCapability, d, uintptr(unsafe.Pointer(&major)), uintptr(unsafe.Pointer(&minor))) == nvmlSuccess {
			g.Major, g.Minor = int(major), int(minor)
		}
		var pci nvmlPciInfo
		if l.call(nvmlDeviceGetPciInfo, d, uintptr(unsafe.Pointer(&pci))) == nvmlSuccess {
			g.PCIBusID = cBytes(pci.BusID[:])
		}
		for link := range nvmlNVLinkMaxLinks {
			var st int32 // nvmlEnableState_t
			if l.call(nvmlDeviceGetNvLinkState, d, uintptr(link), uintptr(unsafe.Pointer(&st))) != nvmlSuccess {
				break // NOT_SUPPORTED on PCIe parts, INVALID_ARGUMENT past the last link
			}
			if st == nvmlFeatureEnabled {
				g.NVLinks++
			}
		}
		gpus = append(gpus, g)
	}
	return gpus, nil
}

// cBytes returns the bytes of b up to its first NUL.
func cBytes(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
