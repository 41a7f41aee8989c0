package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestGemmFP4Command(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"gemm", "--fp4", "-m", "7", "-n", "130", "-k", "300", "-repeats", "1", "-ue8m0"}, nil, &out, &errb); code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if s := out.String(); !strings.Contains(s, "PASS") || !strings.Contains(s, "B fp4 e2m1 1×32") || !strings.Contains(s, "gate 1e-02") {
		t.Fatalf("unexpected output %q", s)
	}
	out.Reset()
	if code := run([]string{"gemm", "--fp4", "--fp4-gran", "128", "-backend", "ref", "-m", "3", "-n", "20", "-k", "258", "-json"}, nil, &out, &errb); code != exitOK {
		t.Fatalf("json: exit %d, stderr %q", code, errb.String())
	}
	var res gemmResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || !res.Pass || res.FP4ScaleK != 128 || res.GateUnquantized != 0.01 || res.CalcDiffDequant >= res.GateDequantized {
		t.Fatalf("json output %q (%v)", out.String(), err)
	}
	for _, bad := range [][]string{{"gemm", "--fp4", "-k", "301"}, {"gemm", "--fp4", "--fp4-gran", "64"}, {"gemm", "--fp4", "--fp4-gran", "0"}} {
		errb.Reset()
		if code := run(bad, nil, &out, &errb); code != exitUsage || errb.Len() == 0 {
			t.Errorf("%v: exit %d (stderr %q), want %d with a message", bad, code, errb.String(), exitUsage)
		}
	}
	// Without --fp4 the granularity flag is inert and the FP8 gate applies.
	out.Reset()
	if code := run([]string{"gemm", "-m", "2", "-n", "8", "-k", "129", "-repeats", "1", "-json"}, nil, &out, &errb); code != exitOK {
		t.Fatalf("fp8: exit %d", code)
	}
	res = gemmResult{}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.FP4ScaleK != 0 || res.GateUnquantized != 0.001 {
		t.Fatalf("fp8 json output %q (%v)", out.String(), err)
	}
}
