package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestMLAPlan(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"mla", "plan", "--parts", "3"}, strings.NewReader("100 0\n700"), &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	want := "requests 3  parts 3  splits 4\npart begin_req begin_seqlen end_req end_seqlen begin_split\n0 0 0 1 0 0\n1 2 0 2 640 0\n2 2 640 2 700 1\nnum_splits 0 1 2 4\n"
	if out.String() != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if code := run([]string{"mla", "plan", "--json", "-"}, strings.NewReader("4096,4096"), &out, &errb); code != exitOK {
		t.Fatalf("json exit %d", code)
	}
	var v struct {
		NumParts  int     `json:"num_parts"`
		NumSplits []int32 `json:"num_splits"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.NumParts != 66 || len(v.NumSplits) != 3 {
		t.Errorf("json %s: %+v %v", out.String(), v, err)
	}
}

func TestMLAErrors(t *testing.T) {
	for _, args := range [][]string{
		{"mla"},
		{"mla", "nope"},
		{"mla", "plan", "--parts", "-1"},
		{"mla", "plan", "/does/not/exist"},
		{"mla", "check", "--hq", "3", "--hkv", "2"},
		{"mla", "check", "--dtype", "F8_E4M3"},
		{"mla", "bench", "--backend", "gpu"},
		{"mla", "check", "--bogus"},
		{"mla", "check", "--b", "64", "--sk", "1000000"},
		{"mla", "bench", "--b", "64", "--sk", "1000000"},
		{"mla", "check", "--b", "1000", "--sq", "4", "--hq", "128", "--sk", "1"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, strings.NewReader("x"), &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
		if out.Len() != 0 {
			t.Errorf("%v: stdout %q, want empty", args, out.String())
		}
	}
	for _, args := range [][]string{
		{"mla", "plan", "--hq", "3", "--hkv", "2"},
		{"mla", "plan", "--sq", "0"},
		{"mla", "plan", "--hq", "-1"},
		{"mla", "plan", "--hkv", "0"},
		{"mla", "plan", "--sms", "0"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, strings.NewReader("100 200"), &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "--hq") {
			t.Errorf("%v: exit %d, stderr %q; want exit %d naming the flags", args, code, errb.String(), exitUsage)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"mla", "plan"}, strings.NewReader("12 x"), &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "seqlens") {
		t.Errorf("bad seqlens: exit %d, stderr %q", code, errb.String())
	}
}

func TestMLACheck(t *testing.T) {
	for _, be := range []string{"cpu", "ref"} {
		var out, errb bytes.Buffer
		code := run([]string{"mla", "check", "--backend", be, "--b", "2", "--sq", "2", "--sk", "70", "--hq", "16", "--page", "16", "--varlen"}, nil, &out, &errb)
		if code != exitOK || !strings.HasSuffix(out.String(), "pass\n") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", be, code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"mla", "check", "--json", "--b", "1", "--sk", "10", "--hq", "4"}, nil, &out, &errb); code != exitOK {
		t.Fatalf("json exit %d: %s", code, errb.String())
	}
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v["pass"] != true {
		t.Errorf("json %s: %v", out.String(), err)
	}
}

func TestMLABench(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"mla", "bench", "--json", "--b", "1", "--sk", "256", "--hq", "16", "--rounds", "2"}, nil, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var v struct {
		GFLOPs    float64 `json:"gflop_per_s"`
		RatioGEMM float64 `json:"x_gemm"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.GFLOPs <= 0 || v.RatioGEMM <= 0 {
		t.Errorf("json %s: %+v %v", out.String(), v, err)
	}
}
