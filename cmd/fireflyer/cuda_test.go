package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/cuda"
)

func TestCUDAInfo(t *testing.T) {
	t.Setenv("FIREFLYER_JIT_CACHE_DIR", t.TempDir())
	var out, errb bytes.Buffer
	if code := run([]string{"cuda", "info"}, nil, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"driver:", "nvrtc:", "jit cache:", "(0 kernels)", "fp8_gemm_nt<64, 64, 1>", "mla_decode_partial<576, 512, 64>"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"cuda", "info", "--json"}, nil, &out, &errb); code != exitOK {
		t.Fatalf("--json exit %d", code)
	}
	var r cudaReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out.String())
	}
	if len(r.Kernels) != 4 || r.CacheDir == "" {
		t.Errorf("report %+v", r)
	}
	if _, err := cuda.SystemDriver(); err != nil && !strings.Contains(r.DriverError, "unavailable") {
		t.Errorf("driver error %q", r.DriverError)
	}
}

func TestCUDAUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"cuda"}, exitUsage, "usage: fireflyer cuda info"},
		{[]string{"cuda", "-h"}, exitOK, "warmup"},
		{[]string{"cuda", "frobnicate"}, exitUsage, `unknown verb "frobnicate"`},
		{[]string{"cuda", "info", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"cuda", "info", "-h"}, exitOK, "-json"},
		{[]string{"cuda", "warmup", "--arch", "90a"}, exitUsage, `--arch "90a"`},
		{[]string{"cuda", "warmup", "-h"}, exitOK, "-arch"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, nil, &out, &errb)
		if code != c.code || !strings.Contains(out.String()+errb.String(), c.want) {
			t.Errorf("%v: exit %d, output %q %q", c.args, code, out.String(), errb.String())
		}
	}
}

// TestCUDAWarmupWithoutNVRTC: without NVRTC (or a device) warmup says why
// and exits 1.
func TestCUDAWarmupWithoutNVRTC(t *testing.T) {
	if _, err := cuda.SystemNVRTC(); err == nil {
		t.Skip("NVRTC is present here")
	}
	t.Setenv("FIREFLYER_JIT_CACHE_DIR", t.TempDir())
	var out, errb bytes.Buffer
	if code := run([]string{"cuda", "warmup", "--arch", "sm_90a"}, nil, &out, &errb); code != exitFail || !strings.Contains(errb.String(), "cannot load NVRTC") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if _, err := cuda.SystemDriver(); err != nil {
		if code := run([]string{"cuda", "warmup"}, nil, &out, &errb); code != exitFail || !strings.Contains(errb.String(), "pass --arch sm_90a") {
			t.Errorf("no device: exit %d, stderr %q", code, errb.String())
		}
	}
}
