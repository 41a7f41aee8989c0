package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestGemmCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"gemm", "-m", "7", "-n", "130", "-k", "300", "-repeats", "1"}, nil, &out, &errb); code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if !strings.Contains(out.String(), "PASS") || !strings.Contains(out.String(), "calc_diff vs dequantized") {
		t.Fatalf("unexpected output %q", out.String())
	}
	out.Reset()
	if code := run([]string{"gemm", "-backend", "ref", "-m", "3", "-n", "20", "-k", "129", "-ue8m0", "-json"}, nil, &out, &errb); code != exitOK {
		t.Fatalf("json: exit %d, stderr %q", code, errb.String())
	}
	var res gemmResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || !res.Pass || res.Scales != "ue8m0" || res.M != 3 {
		t.Fatalf("json output %q (%v)", out.String(), err)
	}
	for _, bad := range [][]string{{"gemm", "-m", "0"}, {"gemm", "-backend", "gpu"}, {"gemm", "-repeats", "0"}, {"gemm", "extra"}, {"gemm", "-nope"}} {
		errb.Reset()
		if code := run(bad, nil, &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", bad, code, exitUsage)
		}
	}
	if code := run([]string{"gemm", "-h"}, nil, &out, &errb); code != exitOK || !strings.Contains(errb.String(), "-backend") {
		t.Errorf("-h: exit %d, usage %q", code, errb.String())
	}
}
