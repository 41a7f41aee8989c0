package main

import (
	"os"
	"testing"

	"github.com/fireflyer-go/fireflyer/ep/sock"
)

// TestMain lets the test binary act as a rank process: `ep bench` and
// `demo` with --transport tcp|unix start this executable again as
// `<program> rank ...` through sock.Launch.
func TestMain(m *testing.M) {
	if sock.Launched() && len(os.Args) > 1 && os.Args[1] == "rank" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
