package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestGemmTrainingCommand runs every --layout and both k-grouped forms on
// both backends and checks the verdict and the JSON fields; bad
// combinations are usage errors.
func TestGemmTrainingCommand(t *testing.T) {
	for _, be := range []string{"cpu", "ref"} {
		for _, l := range []string{"nt", "nn", "tn", "tt"} {
			var out, errb bytes.Buffer
			if code := run([]string{"gemm", "-backend", be, "-m", "9", "-n", "130", "-k", "200", "-repeats", "1", "--layout", l, "-json"}, nil, &out, &errb); code != exitOK {
				t.Fatalf("%s %s: exit %d, stderr %q", be, l, code, errb.String())
			}
			var res gemmResult
			if err := json.Unmarshal(out.Bytes(), &res); err != nil || !res.Pass || res.Layout != l || res.KGrouped {
				t.Fatalf("%s %s: json %q (%v)", be, l, out.String(), err)
			}
		}
		for _, l := range []string{"", "nt"} {
			var out, errb bytes.Buffer
			args := []string{"gemm", "-backend", be, "-m", "20", "-n", "36", "-k", "256", "-repeats", "1", "--kgrouped", "--groups", "3", "-json"}
			if l != "" {
				args = append(args, "--layout", l)
			}
			if code := run(args, nil, &out, &errb); code != exitOK {
				t.Fatalf("%s kgrouped %q: exit %d, stderr %q", be, l, code, errb.String())
			}
			var res gemmResult
			want := map[string]string{"": "tn", "nt": "nt"}[l]
			if err := json.Unmarshal(out.Bytes(), &res); err != nil || !res.Pass || !res.KGrouped || res.Groups != 3 || res.Layout != want {
				t.Fatalf("%s kgrouped %q: json %q (%v)", be, l, out.String(), err)
			}
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"gemm", "-m", "9", "-n", "130", "-k", "200", "-repeats", "1", "--layout", "tt"}, nil, &out, &errb); code != exitOK || !strings.Contains(out.String(), "layout tt") {
		t.Fatalf("text: exit %d, %q", code, out.String())
	}
	for _, bad := range [][]string{
		{"gemm", "--layout", "xx"},
		{"gemm", "--kgrouped", "--layout", "nn"},
		{"gemm", "--kgrouped", "--layout", "tt"},
		{"gemm", "--kgrouped", "-k", "100"},
		{"gemm", "--kgrouped", "--groups", "0"},
		{"gemm", "--kgrouped", "--groups", "9999"},
		{"gemm", "--kgrouped", "--groups", "256", "-m", "4096", "-n", "4096", "-k", "4096"},
	} {
		errb.Reset()
		if code := run(bad, nil, &out, &errb); code != exitUsage || errb.Len() == 0 {
			t.Errorf("%v: exit %d (stderr %q), want %d", bad, code, errb.String(), exitUsage)
		}
	}
}
