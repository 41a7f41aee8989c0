package eptest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
)

// Runner starts ranks ranks over some transport, runs fn on each with its
// transport and returns the ranks' errors joined.
type Runner func(ctx context.Context, ranks int, fn func(ctx context.Context, t ep.Transport) error) error

// Case is one conformance check: Ranks ranks each run Rank.
type Case struct {
	Name  string
	Ranks int
	// Short marks cases cheap enough for -short runs.
	Short bool
	// Rank runs the case on one rank and returns an error describing the
	// first mismatch.
	Rank func(ctx context.Context, t ep.Transport) error
}

// Cases returns the whole suite.
func Cases() []Case {
	var cs []Case
	cs = append(cs, normalCases()...)
	cs = append(cs, lowLatencyCases()...)
	cs = append(cs, badInputCases()...)
	return cs
}

// Find returns the case named name.
func Find(name string) (Case, bool) {
	for _, c := range Cases() {
		if c.Name == name {
			return c, true
		}
	}
	return Case{}, false
}

// Run runs every case (only the Short ones under -short) as a subtest
// through run, each under a 2-minute deadline.
func Run(t *testing.T, run Runner) {
	t.Helper()
	for _, c := range Cases() {
		if testing.Short() && !c.Short {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := run(ctx, c.Ranks, c.Rank); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func failf(format string, args ...any) error { return fmt.Errorf("check failed: "+format, args...) }
