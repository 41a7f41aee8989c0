package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/fireflyer-go/fireflyer/cuda"
	"github.com/fireflyer-go/fireflyer/ep"
	_ "github.com/fireflyer-go/fireflyer/ep/inproc" // registers the inproc transport
	_ "github.com/fireflyer-go/fireflyer/ep/sock"   // registers tcp and unix
	"github.com/fireflyer-go/fireflyer/ep/ucx"      // registers ucx
	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/gemm"
	gemmcpu "github.com/fireflyer-go/fireflyer/gemm/cpu"
	_ "github.com/fireflyer-go/fireflyer/gemm/ref" // registers "ref"
	"github.com/fireflyer-go/fireflyer/internal/platform"
	"github.com/fireflyer-go/fireflyer/internal/registry"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/rdma"
)

func init() {
	register(command{name: "info", summary: "show the machine as the SDK sees it and which backends are usable", run: runInfo})
}

// infoReport is the JSON form of `fireflyer info --json`.
type infoReport struct {
	GoVersion  string               `json:"go_version"`
	OS         string               `json:"os"`
	CPUs       int                  `json:"cpus"`
	CPU        platform.CPUFeatures `json:"cpu_features"`
	GPUs       []cuda.GPU           `json:"gpus"`
	GPUError   string               `json:"gpu_error,omitempty"`
	RDMA       []rdma.Device        `json:"rdma_devices"`
	RDMAError  string               `json:"rdma_error,omitempty"`
	IOURing    bool                 `json:"io_uring"`
	IOURingWhy string               `json:"io_uring_error,omitempty"`
	Backends   []backendStatus      `json:"backends"`
}

// backendStatus says whether one backend of one package is usable here.
type backendStatus struct {
	Package string `json:"package"`
	Backend string `json:"backend"`
	Usable  bool   `json:"usable"`
	Detail  string `json:"detail"` // what it will use, or why it is not usable
}

func runInfo(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("info", "info [--json]", stderr)
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	r := gatherInfo()
	if *asJSON {
		return writeJSON(stdout, stderr, "info", r)
	}
	printInfo(stdout, r)
	return exitOK
}

func gatherInfo() infoReport {
	r := infoReport{
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS + "/" + runtime.GOARCH,
		CPUs:      runtime.NumCPU(),
		CPU:       platform.CPU(),
		GPUs:      []cuda.GPU{},
		RDMA:      []rdma.Device{},
	}
	if gpus, err := cuda.Devices(); err != nil {
		r.GPUError = err.Error()
	} else {
		r.GPUs = gpus
	}
	if devs, err := rdma.Devices(); err != nil {
		r.RDMAError = err.Error()
	} else {
		r.RDMA = devs
	}
	if err := platform.IOURing(); err != nil {
		r.IOURingWhy = err.Error()
	} else {
		r.IOURing = true
	}
	r.Backends = backendTable(r)
	return r
}

func backendTable(r infoReport) []backendStatus {
	gpuWhy := "no usable GPU: " + r.GPUError
	if r.GPUError == "" {
		gpuWhy = "GPU present; the CUDA kernels (cuda/kernels) are not wired into this package yet"
	}
	if _, err := cuda.SystemDriver(); err != nil && r.GPUError == "" {
		gpuWhy = err.Error()
	}
	rdmaWhy := "no RDMA device: " + r.RDMAError
	if r.RDMAError == "" {
		rdmaWhy = "RDMA device present; the verbs transport is not in this version yet"
	}
	kernel := func(level string) string {
		switch level {
		case "avx512":
			return "AVX-512 kernels (Go assembly)"
		case "avx2":
			return "AVX2+FMA kernels (Go assembly)"
		case "neon":
			return "NEON (arm64 ASIMD) kernels (Go assembly)"
		}
		return "pure-Go kernels (no AVX2/AVX-512/NEON here, or built with -tags noasm)"
	}
	// gemm and mla list their registries (what gemm.NewBackend and
	// mla.NewBackend construct).
	var out []backendStatus
	for _, reg := range []struct {
		pkg   string
		list  []registry.Status
		level string
	}{{"gemm", gemm.Backends(), gemmcpu.New(gemmcpu.Options{}).Kernel()}, {"mla", mla.Backends(), mlaKernels()}} {
		for _, b := range reg.list {
			st := registryRow(reg.pkg, b)
			if b.Err == nil && b.Name == "cpu" {
				st.Detail = kernel(reg.level)
			}
			out = append(out, st)
		}
		out = append(out, backendStatus{reg.pkg, "cuda", false, gpuWhy})
	}
	// mla's sparse attention registry (what mla.NewSparseBackend constructs).
	for _, s := range mla.SparseBackends() {
		out = append(out, registryRow("mla-sparse", s))
	}
	// ep lists its transport registry (what ep.OpenTransport constructs).
	for _, s := range ep.Transports() {
		row := registryRow("ep", s)
		if s.Name == "ucx" && s.Err == nil {
			row.Usable, row.Detail = ucxDetail()
		}
		out = append(out, row)
	}
	out = append(out, backendStatus{"ep", "rdma", false, rdmaWhy})
	// fs lists its backend registry (what fs.NewBackend constructs).
	for _, s := range fs.Backends() {
		out = append(out, registryRow("fs", s))
	}
	return out
}

// registryRow is the table row of one registry entry: usable with its Doc
// as the detail, or unusable with the reason it cannot run.
func registryRow(pkg string, s registry.Status) backendStatus {
	b := backendStatus{Package: pkg, Backend: s.Name, Usable: s.Err == nil, Detail: s.Doc}
	if s.Err != nil {
		b.Detail = s.Err.Error()
	}
	return b
}

func printInfo(w io.Writer, r infoReport) {
	fmt.Fprintf(w, "go:        %s %s, %d CPUs\n", r.GoVersion, r.OS, r.CPUs)
	feats := r.CPU.Names()
	if len(feats) == 0 {
		feats = []string{"none of AVX2/FMA/AVX-512/NEON"}
	}
	fmt.Fprintf(w, "cpu:       %s\n", strings.Join(feats, " "))
	if r.GPUError != "" {
		fmt.Fprintf(w, "gpus:      none (%s)\n", r.GPUError)
	} else {
		fmt.Fprintf(w, "gpus:      %d\n", len(r.GPUs))
		for _, g := range r.GPUs {
			fmt.Fprintf(w, "  [%d] %s %s, %d MiB, NVLinks %d, PCI %s\n", g.Index, g.Name, g.Arch(), g.MemoryTotal>>20, g.NVLinks, g.PCIBusID)
		}
	}
	if r.RDMAError != "" {
		fmt.Fprintf(w, "rdma:      none (%s)\n", r.RDMAError)
	} else {
		fmt.Fprintf(w, "rdma:      %d\n", len(r.RDMA))
		for _, d := range r.RDMA {
			for _, p := range d.Ports {
				fmt.Fprintf(w, "  %s port %d: %s %s %s, netdevs %v\n", d.Name, p.Number, p.LinkLayer, p.State, p.Rate, d.NetDevs)
			}
		}
	}
	if r.IOURing {
		fmt.Fprintln(w, "io_uring:  available")
	} else {
		fmt.Fprintf(w, "io_uring:  unavailable (%s)\n", r.IOURingWhy)
	}
	fmt.Fprintln(w, "backends:")
	pw, bw := 5, 7 // column widths: at least those of "gemm " and "inproc "
	for _, b := range r.Backends {
		pw, bw = max(pw, len(b.Package)), max(bw, len(b.Backend))
	}
	for _, b := range r.Backends {
		state := "usable"
		if !b.Usable {
			state = "unusable"
		}
		fmt.Fprintf(w, "  %-*s %-*s %-9s %s\n", pw, b.Package, bw, b.Backend, state, b.Detail)
	}
}

// mlaKernels names the kernel set of mla's default cpu backend.
func mlaKernels() string {
	if k, ok := mla.Default().(interface{ Kernels() string }); ok {
		return k.Kernels()
	}
	return "go"
}

// ucxDetail is the ep ucx row: the UCX version and the transports a UCP
// context created with this environment (UCX_TLS, UCX_NET_DEVICES, ...)
// may use, or why none is usable.
func ucxDetail() (bool, string) {
	in, err := ucx.Probe()
	if err != nil {
		return false, err.Error()
	}
	return true, fmt.Sprintf("UCX %s; transports %s (UCX_TLS selects)", in.Version, strings.Join(in.Transports, ", "))
}
