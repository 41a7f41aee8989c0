package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/fireflyer-go/fireflyer/cuda"
	"github.com/fireflyer-go/fireflyer/cuda/jit"
	"github.com/fireflyer-go/fireflyer/cuda/kernels"
)

func init() {
	register(command{name: "cuda", summary: "CUDA driver, NVRTC and JIT kernel cache: info, warmup", run: runCUDA})
}

// cudaReport is the JSON form of `fireflyer cuda info --json`.
type cudaReport struct {
	Driver        string            `json:"driver,omitempty"`
	DriverVersion int               `json:"driver_version,omitempty"`
	DriverError   string            `json:"driver_error,omitempty"`
	Devices       []cuda.DeviceInfo `json:"devices"`
	NVRTC         string            `json:"nvrtc,omitempty"`
	NVRTCVersion  string            `json:"nvrtc_version,omitempty"`
	NVRTCError    string            `json:"nvrtc_error,omitempty"`
	CacheDir      string            `json:"jit_cache_dir"`
	CacheEntries  int               `json:"jit_cache_entries"`
	Kernels       []string          `json:"kernels"`
}

func runCUDA(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		w := stderr // -h too, like every flag set; 'fireflyer help cuda' sends it to stdout
		fmt.Fprintln(w, "usage: fireflyer cuda info [--json]      driver, devices, NVRTC and JIT cache")
		fmt.Fprintln(w, "       fireflyer cuda warmup [--arch A]  compile every kernel into the JIT cache")
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch args[0] {
	case "info":
		return runCUDAInfo(args[1:], stdout, stderr)
	case "warmup":
		return runCUDAWarmup(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "fireflyer cuda: unknown verb %q (want info or warmup)\n", args[0])
	return exitUsage
}

func gatherCUDA() cudaReport {
	r := cudaReport{Devices: []cuda.DeviceInfo{}}
	if d, err := cuda.SystemDriver(); err != nil {
		r.DriverError = err.Error()
	} else {
		r.Driver, r.DriverVersion = d.Path(), d.Version()
		if n, err := d.DeviceCount(); err != nil {
			r.DriverError = err.Error()
		} else {
			for i := range n {
				c, err := d.Open(i)
				if err != nil {
					r.DriverError = err.Error()
					break
				}
				r.Devices = append(r.Devices, c.Info())
				c.Close()
			}
		}
	}
	if n, err := cuda.SystemNVRTC(); err != nil {
		r.NVRTCError = err.Error()
	} else {
		maj, min := n.Version()
		r.NVRTC, r.NVRTCVersion = n.Path(), fmt.Sprintf("%d.%d", maj, min)
	}
	if dir, err := jit.DefaultCacheDir(); err == nil {
		r.CacheDir = dir
		if e, err := jit.CacheEntries(dir); err == nil {
			r.CacheEntries = len(e)
		}
	}
	for _, k := range kernels.Instances() {
		r.Kernels = append(r.Kernels, k.Instance.String())
	}
	return r
}

func runCUDAInfo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cuda info", "cuda info [--json]", stderr)
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	r := gatherCUDA()
	if *asJSON {
		return writeJSON(stdout, stderr, "cuda info", r)
	}
	if r.DriverError != "" {
		fmt.Fprintf(stdout, "driver:    %s\n", r.DriverError)
	} else {
		fmt.Fprintf(stdout, "driver:    %s, CUDA %d.%d\n", r.Driver, r.DriverVersion/1000, r.DriverVersion%1000/10)
	}
	for _, d := range r.Devices {
		fmt.Fprintf(stdout, "device %d:  %s, %s, %d SMs, %.1f GiB, %d KiB shared memory per block\n",
			d.Ordinal, d.Name, d.Arch(), d.SMs, float64(d.TotalMem)/(1<<30), d.SharedMemOptin>>10)
	}
	if r.NVRTCError != "" {
		fmt.Fprintf(stdout, "nvrtc:     %s\n", r.NVRTCError)
	} else {
		fmt.Fprintf(stdout, "nvrtc:     %s, %s\n", r.NVRTC, r.NVRTCVersion)
	}
	fmt.Fprintf(stdout, "jit cache: %s (%d kernels)\n", r.CacheDir, r.CacheEntries)
	fmt.Fprintf(stdout, "kernels:   %s\n", strings.Join(r.Kernels, ", "))
	return exitOK
}

func runCUDAWarmup(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cuda warmup", "cuda warmup [--arch sm_XX]", stderr)
	arch := fs.String("arch", "", "target architecture, e.g. sm_90a (default: device 0's)")
	if code, ok := parseNoArgs(fs, args, stderr); !ok {
		return code
	}
	if *arch == "" {
		c, err := cuda.Open(0)
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer cuda warmup: no device to take the architecture from (pass --arch sm_90a): %v\n", err)
			return exitFail
		}
		*arch = c.Info().Arch()
		c.Close()
	} else if !strings.HasPrefix(*arch, "sm_") {
		fmt.Fprintf(stderr, "fireflyer cuda warmup: --arch %q is not sm_XX\n", *arch)
		return exitUsage
	}
	comp, err := jit.System()
	if err != nil {
		fmt.Fprintln(stderr, "fireflyer cuda warmup:", err)
		return exitFail
	}
	failed := false
	for _, r := range kernels.Instances() {
		r.Arch = *arch
		k, err := comp.Compile(r)
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer cuda warmup: %v\n", err)
			failed = true
			continue
		}
		how := "compiled"
		if k.Cached {
			how = "cached"
		}
		fmt.Fprintf(stdout, "%-36s %s %-8s %7d bytes  %s\n", r.Instance, *arch, how, len(k.Image), k.Path)
	}
	if failed {
		return exitFail
	}
	return exitOK
}
