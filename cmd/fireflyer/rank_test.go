package main

import (
	"os"
	"syscall"
	"testing"

	"github.com/fireflyer-go/fireflyer/ep/sock"
)

// TestMain lets the test binary act as a rank process: `ep bench` and
// `demo` with --transport tcp|unix start this executable again as
// `<program> rank ...` through sock.Launch.
func TestMain(m *testing.M) {
	if sock.Launched() && len(os.Args) > 1 && os.Args[1] == "rank" {
		// The stalled-rank tests (stall_linux_test.go) name a rank in
		// stopRankEnv: that rank stops itself (SIGSTOP, as kill -STOP
		// would) before doing any work, so the stall does not depend on
		// catching a short-lived process in time.
		if r := os.Getenv(stopRankEnv); r != "" && r == os.Getenv("RANK") {
			_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
		}
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// stopRankEnv names the rank that stops itself at start in this test
// binary's rank processes (see TestMain).
const stopRankEnv = "FIREFLYER_TEST_STOP_RANK"
