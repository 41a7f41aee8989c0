package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/ep/ucx"
)

func TestEPBench(t *testing.T) {
	transports := []string{"inproc", "tcp", "unix"}
	if _, err := ucx.Probe(); err == nil {
		transports = append(transports, "ucx") // over whatever UCX_TLS allows here
	} else {
		t.Logf("ucx skipped: %v", err)
	}
	for _, tr := range transports {
		for _, ll := range []bool{false, true} {
			name := tr + "/normal"
			args := []string{"ep", "bench", "--transport", tr, "--ranks", "3", "--tokens", "32", "--hidden", "256", "--topk", "2", "--experts", "6", "--iters", "2", "--json"}
			if ll {
				name = tr + "/low-latency-fp8"
				args = append(args, "--low-latency", "--fp8")
			}
			t.Run(name, func(t *testing.T) {
				var out, errb bytes.Buffer
				if code := run(args, nil, &out, &errb); code != exitOK {
					t.Fatalf("exit %d: %s", code, errb.String())
				}
				var rep epReport
				if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
					t.Fatalf("stdout is not one JSON object: %v\n%s", err, out.String())
				}
				if rep.Transport != tr || rep.Ranks != 3 || rep.LowLatency != ll {
					t.Errorf("report echoes %+v", rep.epBenchConfig)
				}
				if !(rep.DispatchUS > 0 && rep.CombineUS > 0 && rep.DispatchGBps > 0 && rep.CombineGBps > 0) {
					t.Errorf("non-positive measurements: %+v", rep)
				}
				// Upstream's byte definitions, checked on the totals.
				if ll {
					// 32 tokens × 2 selections × 3 ranks; FP8 message H + 4H/128 + 16.
					if want := float64(32*2*3) * (256 + 8 + 16); rep.DispatchBytes != want {
						t.Errorf("dispatch bytes %v, want %v", rep.DispatchBytes, want)
					}
					if want := float64(32*2*3) * 512; rep.CombineBytes != want {
						t.Errorf("combine bytes %v, want %v", rep.CombineBytes, want)
					}
				} else if rep.DispatchBytes != rep.CombineBytes || int(rep.CombineBytes)%512 != 0 || rep.CombineBytes < 32*3*512 {
					t.Errorf("normal bytes: dispatch %v, combine %v", rep.DispatchBytes, rep.CombineBytes)
				}
			})
		}
	}
}

func TestEPBenchText(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"ep", "bench", "--ranks", "2", "--tokens", "16", "--hidden", "128", "--topk", "2", "--experts", "4", "--iters", "1"}, nil, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "[ep bench] normal mode, transport inproc, 2 ranks") ||
		!strings.HasPrefix(lines[1], "[dispatch] ") || !strings.HasPrefix(lines[2], "[combine]  ") {
		t.Fatalf("report:\n%s", out.String())
	}
}

func TestEPBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"ep"},
		{"ep", "run"},
		{"ep", "bench", "--transport", "rdma"},
		{"ep", "bench", "--ranks", "3", "--experts", "16"},
		{"ep", "bench", "--tokens", "0"},
		{"ep", "bench", "--nope"},
		{"ep", "bench", "extra"},
		{"ep", "bench", "--low-latency", "--fp8", "--hidden", "100"},
		// sizes that would exhaust memory (a fatal runtime OOM before) or
		// overflow int
		{"ep", "bench", "--tokens", "1000000000", "--hidden", "7168"},
		{"ep", "bench", "--tokens", "4611686018427387904", "--hidden", "4611686018427387904"},
		{"ep", "bench", "--low-latency", "--tokens", "100000000"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, nil, &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
		if out.Len() != 0 {
			t.Errorf("%v: wrote to stdout: %q", args, out.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"ep", "bench", "-h"}, nil, &out, &errb); code != exitOK || !strings.Contains(errb.String(), "-transport") {
		t.Errorf("-h: exit %d, help %q", code, errb.String())
	}
}
