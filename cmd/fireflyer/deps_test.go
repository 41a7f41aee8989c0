package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryDoesNotLinkTesting holds the shipped binary free of package
// testing (and of the conformance suites that import it): the oracles the
// CLI needs live in non-test packages (gemm/oracle, mla/oracle,
// internal/testutil). It asks the go command for the binary's dependency
// set, once without and once with the noasm tag and cgo off.
func TestBinaryDoesNotLinkTesting(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH: %v", err)
	}
	banned := map[string]bool{
		"testing": true,
		"github.com/fireflyer-go/fireflyer/gemm/gemmtest": true,
		"github.com/fireflyer-go/fireflyer/mla/mlatest":   true,
		"github.com/fireflyer-go/fireflyer/ep/eptest":     true,
		"github.com/fireflyer-go/fireflyer/fs/fstest":     true,
		"github.com/fireflyer-go/fireflyer/cuda/cudatest": true,
	}
	for _, env := range [][]string{nil, {"CGO_ENABLED=0", "GOFLAGS=-tags=noasm"}} {
		cmd := exec.Command(gobin, "list", "-deps", ".")
		cmd.Env = append(cmd.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("go list -deps (%v): %v\n%s", env, err, stderr)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps (%v) listed only %q", env, deps)
		}
		for _, d := range deps {
			if banned[d] {
				t.Errorf("fireflyer (%v) links %s", env, d)
			}
		}
	}
}
