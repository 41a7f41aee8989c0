package main

import (
	"context"
	"fmt"
	"io"

	"github.com/fireflyer-go/fireflyer/cmd/fireflyer/internal/demo"
	"github.com/fireflyer-go/fireflyer/ep/sock"
)

func init() {
	register(command{name: "rank", hidden: true, run: runRank,
		summary: "internal: one rank process of `ep bench` or `demo` with --transport tcp|unix|ucx, or of `schedule --run`"})
}

// runRank is the role of a rank process that `ep bench` and `demo` start
// through sock.Launch for --transport tcp|unix: `fireflyer rank ep-bench
// CONFIG` or `fireflyer rank demo` (its work on standard input, its result
// on standard output). It is entered from the normal dispatch, never from
// init, and refuses to run outside a launched process.
func runRank(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if !sock.Launched() {
		fmt.Fprintf(stderr, "fireflyer rank: internal subcommand of the rank processes that `ep bench` and `demo` start (%s is not set); not for direct use\n", sock.EnvNetwork)
		return exitUsage
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "fireflyer rank: no role given (want ep-bench, schedule or demo); not for direct use")
		return exitUsage
	}
	switch args[0] {
	case "ep-bench":
		return epRankMain(args[1:], stdout, stderr)
	case "schedule":
		return scheduleRankMain(args[1:], stdout, stderr)
	case "demo":
		if err := demo.RankMain(context.Background(), stdin, stdout); err != nil {
			fmt.Fprintln(stderr, "fireflyer demo rank:", err)
			return exitFail
		}
		return exitOK
	}
	fmt.Fprintf(stderr, "fireflyer rank: unknown role %q (want ep-bench, schedule or demo)\n", args[0])
	return exitUsage
}
