package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/ep/ucx"
)

// TestRunLengthAndTimeoutFlags: run-length and deadline flags are bounded
// and checked before any work (exit 2 naming the flag).
func TestRunLengthAndTimeoutFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ep", "bench", "--iters", "100001"}, "--iters"},
		{[]string{"ep", "bench", "--iters", "0"}, "--iters"},
		{[]string{"ep", "bench", "--iters", "9223372036854775807"}, "--iters"},
		{[]string{"ep", "bench", "--timeout", "0s"}, "--timeout"},
		{[]string{"ep", "bench", "--timeout", "-1s"}, "--timeout"},
		{[]string{"demo", "--timeout", "-1s"}, "--timeout"},
		{[]string{"demo", "--timeout", "0s"}, "--timeout"},
	} {
		code, stdout, stderr := runCLI(t, "", c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2 naming %s", c.args, code, stderr, stdout, c.want)
		}
	}
}

// TestRankRoleHidden: the rank role is not a user subcommand: help does not
// list it, and run by hand it explains itself and exits 2.
func TestRankRoleHidden(t *testing.T) {
	_, stdout, _ := runCLI(t, "", "help")
	if strings.Contains(stdout, "\n  rank ") || strings.Contains(stdout, "internal: one rank process") {
		t.Errorf("help lists the hidden rank role:\n%s", stdout)
	}
	t.Setenv("EP_NETWORK", "")
	if code, _, stderr := runCLI(t, "", "rank", "ep-bench", "{}"); code != exitUsage || !strings.Contains(stderr, "not for direct use") {
		t.Errorf("rank by hand: exit %d, %q", code, stderr)
	}
	// With the variable set but no role, it says what is missing.
	t.Setenv("EP_NETWORK", "unix")
	if code, _, stderr := runCLI(t, "", "rank"); code != exitUsage || !strings.Contains(stderr, "no role given") || strings.Contains(stderr, "is not set") {
		t.Errorf("rank with EP_NETWORK and no role: exit %d, %q", code, stderr)
	}
}

// TestDemoCLIProcesses: `demo --transport unix` through the command's own
// rank role (`fireflyer rank demo`) gives the in-process result bit for bit.
func TestDemoCLIProcesses(t *testing.T) {
	args := []string{"demo", "--scale", "64", "--batch", "8", "--ranks", "2", "--prefix", "24", "--json"}
	diff := func(want string, extra ...string) float64 {
		code, stdout, stderr := runCLI(t, "", append(args, extra...)...)
		var obj struct {
			OK        bool    `json:"ok"`
			CalcDiff  float64 `json:"calc_diff"`
			Transport string  `json:"transport"`
		}
		if code != exitOK || json.Unmarshal([]byte(stdout), &obj) != nil || !obj.OK || obj.Transport != want {
			t.Fatalf("demo %v: exit %d, stderr %q", extra, code, stderr)
		}
		return obj.CalcDiff
	}
	i := diff("inproc")
	if u := diff("unix", "--transport", "unix"); u != i {
		t.Fatalf("unix processes calc_diff %v, in-process %v", u, i)
	}
	// The same over UCX (shared memory), where the UCX run time is installed.
	if _, err := ucx.Probe(); err != nil {
		t.Logf("ucx skipped: %v", err)
		return
	}
	t.Setenv("UCX_TLS", "posix,cma,self")
	if u := diff("ucx", "--transport", "ucx"); u != i {
		t.Fatalf("ucx processes calc_diff %v, in-process %v", u, i)
	}
}
