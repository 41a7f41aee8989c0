package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestMLASparseCheck(t *testing.T) {
	for _, be := range []string{"cpu", "ref"} {
		for _, args := range [][]string{
			{"mla", "check", "--sparse", "--fp8-cache", "--b", "2", "--sq", "2", "--hq", "64", "--sk", "300", "--topk", "256", "--page", "61", "--varlen", "--extra-topk", "64"},
			{"mla", "check", "--sparse", "--sq", "3", "--hq", "64", "--sk", "200", "--topk", "256", "--dqk", "512", "--varlen"},
			{"mla", "check", "--fp8-cache", "--b", "2", "--sq", "2", "--sk", "130", "--hq", "16", "--varlen"},
			{"mla", "check", "--sparse", "--fp8-cache", "--b", "1", "--hq", "64", "--sk", "100", "--topk", "128", "--kernels", "go"},
		} {
			args := append(args, "--backend", be)
			var out, errb bytes.Buffer
			if code := run(args, nil, &out, &errb); code != exitOK || !strings.HasSuffix(out.String(), "pass\n") {
				t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
			}
		}
	}
	var out, errb bytes.Buffer
	// --sparse=false --fp8-cache=false is the dense check.
	if code := run([]string{"mla", "check", "--sparse=false", "--fp8-cache=0", "--b", "1", "--hq", "16", "--sk", "70"}, nil, &out, &errb); code != exitOK || !strings.HasPrefix(out.String(), "case b1_") {
		t.Errorf("dense via =false: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"mla", "check", "--sparse", "--fp8-cache", "--b", "1", "--hq", "64", "--sk", "100", "--topk", "128", "--json"}, nil, &out, &errb); code != exitOK {
		t.Fatalf("json: exit %d, stderr %s", code, errb.String())
	}
	var v struct {
		Case string `json:"case"`
		Pass bool   `json:"pass"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || !v.Pass || !strings.HasPrefix(v.Case, "sparse_decode_b1_sq1_hq64_sk100_topk128") {
		t.Errorf("json %s: %+v %v", out.String(), v, err)
	}
}

func TestMLASparseBench(t *testing.T) {
	if testing.Short() {
		t.Skip("bench runs the anchors")
	}
	for _, args := range [][]string{
		{"mla", "bench", "--sparse", "--fp8-cache", "--b", "1", "--hq", "64", "--sk", "256", "--topk", "128", "--rounds", "1"},
		{"mla", "bench", "--sparse", "--sq", "2", "--hq", "64", "--sk", "256", "--topk", "128", "--rounds", "1"},
		{"mla", "bench", "--fp8-cache", "--b", "1", "--hq", "16", "--sk", "256", "--rounds", "1"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, nil, &out, &errb); code != exitOK || !strings.Contains(out.String(), "ratios x_gemm") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
		}
	}
}

func TestMLASparseErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"mla", "check", "--sparse", "--topk", "-1"}, "--topk"},
		{[]string{"mla", "check", "--sparse", "--fp8-cache", "--topk", "0"}, "--topk"},
		{[]string{"mla", "check", "--sparse", "--hq", "0"}, "--hq"},
		{[]string{"mla", "check", "--sparse", "--extra-topk", "64"}, "--extra-topk"},
		{[]string{"mla", "check", "--sparse", "--fp8-cache", "--b", "0"}, "--b"},
		{[]string{"mla", "check", "--sparse", "--fp8-cache", "--b", "64", "--sk", "1000000"}, "--sk"},
		{[]string{"mla", "check", "--sparse", "--dqk", "0"}, "--dqk"},
		{[]string{"mla", "check", "--sparse", "--backend", "gpu"}, "--backend"},
		{[]string{"mla", "check", "--fp8-cache", "--dtype", "F32"}, "--dtype"},
		{[]string{"mla", "check", "--sparse", "--kernels", "sse"}, "--kernels"},
		{[]string{"mla", "check", "--fp8-cache", "--hkv", "2", "--hq", "4"}, "--hkv"},
		{[]string{"mla", "check", "--sparse", "--bogus"}, "bogus"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, nil, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), tc.flag) || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d naming %s", tc.args, code, out.String(), errb.String(), exitUsage, tc.flag)
		}
	}
}

// TestMLAHelpListsSparse: `mla check -h` and `mla bench -h` list --sparse
// and --fp8-cache (every flag, as the CLI contract asks), and the sparse
// form's own -h lists its flags.
func TestMLAHelpListsSparse(t *testing.T) {
	for _, verb := range []string{"check", "bench"} {
		var out, errb bytes.Buffer
		if code := run([]string{"mla", verb, "-h"}, nil, &out, &errb); code != exitOK {
			t.Fatalf("mla %s -h: exit %d", verb, code)
		}
		help := out.String() + errb.String()
		for _, f := range []string{"-sparse", "-fp8-cache"} {
			if !strings.Contains(help, f) {
				t.Errorf("mla %s -h does not list %s:\n%s", verb, f, help)
			}
		}
		out.Reset()
		errb.Reset()
		if code := run([]string{"mla", verb, "--sparse", "-h"}, nil, &out, &errb); code != exitOK || !strings.Contains(out.String()+errb.String(), "-topk") {
			t.Errorf("mla %s --sparse -h: exit %d, no -topk in %q", verb, code, out.String()+errb.String())
		}
	}
}
