package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep/sock"
	"github.com/fireflyer-go/fireflyer/ep/ucx"
	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
	"github.com/fireflyer-go/fireflyer/pipeline"
)

// The test binary re-executes itself as the rank processes.
func TestMain(m *testing.M) {
	if sock.Launched() {
		err := rankMain()
		// No goroutine may outlive the transport, on success or failure.
		if lerr := leaktest.Find(); lerr != nil {
			err = errors.Join(err, lerr)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "pipeline-train:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	leaktest.Main(m)
}

func self(int) *exec.Cmd { return exec.Command(os.Args[0], "-test.run=^$") }

func testConfig(method pipeline.Method, ranks, steps int) *config {
	c := &config{Method: method, Ranks: ranks, Steps: steps, Hidden: 8, FFN: 16, Rows: 3,
		LR: 0.05, Seed: 233, Network: "unix", Timeout: time.Minute, DieRank: -1}
	if err := c.fill(); err != nil {
		panic(err)
	}
	return c
}

// TestTrainMatchesSequential is issue's done-when check: DualPipeV over 4
// processes and DualPipe over 8, every loss bit-identical to the
// sequential run, the gradients within calc_diff 1e-12.
func TestTrainMatchesSequential(t *testing.T) {
	for _, tc := range []struct {
		method  pipeline.Method
		ranks   int
		network string
	}{
		{pipeline.MethodDualPipeV, 4, "unix"},
		{pipeline.MethodDualPipe, 8, "tcp"},
		{pipeline.MethodZB1P, 3, "unix"},
		{pipeline.MethodDualPipeV, 2, "ucx"},
	} {
		t.Run(fmt.Sprintf("%s/%d/%s", tc.method, tc.ranks, tc.network), func(t *testing.T) {
			if tc.network == "ucx" {
				if _, err := ucx.Probe(); err != nil {
					t.Skipf("ep/ucx unavailable: %v", err)
				}
				t.Setenv("UCX_TLS", "posix,cma,self")
			}
			c := testConfig(tc.method, tc.ranks, 3)
			c.Network = tc.network
			rep, err := train(context.Background(), c, self)
			if err != nil {
				t.Fatal(err)
			}
			s := rep.Sched
			if want := c.Steps * s.Pipes * s.Micro; len(rep.Run) != want || len(rep.Seq) != want {
				t.Fatalf("%d losses from the ranks, %d sequential, want %d", len(rep.Run), len(rep.Seq), want)
			}
			if !rep.BitIdentical {
				for i := range rep.Run {
					if rep.Run[i] != rep.Seq[i] {
						t.Errorf("loss %+v, sequential %+v", rep.Run[i], rep.Seq[i])
					}
				}
				t.Fatal("losses differ from the sequential run")
			}
			if !(rep.GradCalcDiff <= 1e-12) {
				t.Fatalf("gradient calc_diff %g > 1e-12", rep.GradCalcDiff)
			}
			// Training moved the weights: the steps' losses are not all
			// the same numbers as an untrained model's.
			c0 := *c
			c0.LR = 0
			seq0, _, err := sequential(context.Background(), &c0)
			if err != nil {
				t.Fatal(err)
			}
			last := len(seq0) - 1
			if seq0[last].Value == rep.Seq[last].Value {
				t.Fatal("the last loss does not depend on the learning rate: no training happened")
			}
		})
	}
}

// TestRankDies kills one rank in the middle of the first step: every other
// rank must fail on its own, well before the deadline, naming the transport.
func TestRankDies(t *testing.T) {
	c := testConfig(pipeline.MethodDualPipeV, 4, 2)
	c.DieRank = 2
	c.Timeout = 40 * time.Second
	start := time.Now()
	rep, err := train(context.Background(), c, self)
	took := time.Since(start)
	if err == nil {
		t.Fatal("a run with a dead rank succeeded")
	}
	if took > c.Timeout/2 {
		t.Fatalf("the survivors took %v to notice (deadline %v)", took, c.Timeout)
	}
	if !errors.Is(err, sock.ErrRankFailed) {
		t.Fatalf("got %v, want sock.ErrRankFailed", err)
	}
	for _, e := range rep.Exits {
		switch {
		case e.Rank == c.DieRank:
			if e.ExitCode != 3 {
				t.Errorf("rank %d: exit %d, want 3 (died on purpose)", e.Rank, e.ExitCode)
			}
		case e.Stalled || e.ExitCode != 1:
			t.Errorf("rank %d: exit %d stalled=%v, want a failure of its own: %s", e.Rank, e.ExitCode, e.Stalled, e.Stderr)
		case !strings.Contains(e.Stderr, "transport failure") && !strings.Contains(e.Stderr, "closed"):
			t.Errorf("rank %d: error does not name the transport: %s", e.Rank, e.Stderr)
		case strings.Contains(e.Stderr, "goroutine"):
			t.Errorf("rank %d leaked goroutines: %s", e.Rank, e.Stderr)
		}
	}
}

// TestTraceSVG runs the -svg path: one SVG with a measured and a simulated
// row per rank.
func TestTraceSVG(t *testing.T) {
	c := testConfig(pipeline.MethodDualPipeV, 2, 1)
	c.Trace = true
	rep, err := train(context.Background(), c, self)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := timelines(rep)
	if err != nil {
		t.Fatal(err)
	}
	if tl.measured.Makespan <= 0 || tl.predicted.Makespan <= 0 || tl.costs.F <= 0 {
		t.Fatalf("measured %d µs, predicted %d µs, costs %+v", tl.measured.Makespan, tl.predicted.Makespan, tl.costs)
	}
	for r, sp := range tl.measured.Spans {
		for i := 1; i < len(sp); i++ {
			if sp[i].Start < sp[i-1].End {
				t.Fatalf("rank %d: op %d starts at %d before op %d ends at %d", r, i, sp[i].Start, i-1, sp[i-1].End)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "run.svg")
	if err := tl.writeSVG(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "r0 run", "r0 sim", "r1 run", "r1 sim", "measured"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-method", "gpipe"}, {"-ranks", "0"}, {"-steps", "0"}, {"-network", "udp"},
		{"-method", "dualpipe", "-ranks", "3"}, {"-chunks", "3"}, {"extra"}, {"-nope"},
	} {
		var out, errb bytes.Buffer
		if code := cli(args, &out, &errb); code != 2 || out.Len() != 0 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2, nothing, a message", args, code, out.String(), errb.String())
		}
	}
}

// BenchmarkStepVsSimulator trains compute-heavy stages (h=256, f=1024, 8
// rows: one F takes several ms) across real processes and reports the last
// step's measured time, the simulator's prediction from the measured F, B
// and W costs, and predicted/measured (the issue asks ≥ 0.9). Ranks beyond
// the number of idle cores share them, which the simulator does not model.
func BenchmarkStepVsSimulator(b *testing.B) {
	for _, ranks := range []int{2, 4} {
		b.Run(fmt.Sprintf("dualpipev/%d", ranks), func(b *testing.B) {
			var meas, pred, f float64
			for range b.N {
				c := testConfig(pipeline.MethodDualPipeV, ranks, 2)
				c.Hidden, c.FFN, c.Rows, c.Trace = 256, 1024, 8, true
				rep, err := train(context.Background(), c, self)
				if err != nil {
					b.Fatal(err)
				}
				tl, err := timelines(rep)
				if err != nil {
					b.Fatal(err)
				}
				meas += float64(tl.measured.Makespan)
				pred += float64(tl.predicted.Makespan)
				f += float64(tl.costs.F)
			}
			n := float64(b.N)
			b.ReportMetric(meas/n/1e3, "measured-ms")
			b.ReportMetric(pred/n/1e3, "simulated-ms")
			b.ReportMetric(f/n/1e3, "F-ms")
			b.ReportMetric(pred/meas, "simulated/measured")
		})
	}
}
