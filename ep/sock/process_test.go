package sock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/eptest"
	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// The test binary re-executes itself as the ranks: a child finds its case
// in the environment, runs it over a socket transport and exits 0 (passed),
// 1 (failed, the error on stderr) or 3 (an injected crash).
const (
	envChild = "EP_SOCK_TEST_CHILD" // case name
	envFault = "EP_SOCK_TEST_FAULT" // "die:<rank>:<puts>" or "stall:<rank>:<puts>"
)

func runChild() bool {
	name := os.Getenv(envChild)
	if name == "" {
		return false
	}
	var err error
	if name == "launch-parent" && launchParentFn != nil {
		err = launchParentFn()
	} else if strings.HasPrefix(name, "launch-") {
		err = launchChild(name)
	} else {
		err = child(name)
	}
	if err == nil {
		// No goroutine may outlive the transport.
		err = leaktest.Find()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

func child(name string) error {
	opts, ctx, cancel, err := LaunchedOptions(context.Background())
	defer cancel()
	if err != nil {
		return err
	}
	tr, err := Dial(ctx, opts)
	if err != nil {
		return err
	}
	defer tr.Close()
	if name == "fault" {
		return faultRank(ctx, tr, os.Getenv(envFault))
	}
	c, ok := eptest.Find(name)
	if !ok {
		return fmt.Errorf("no case %q", name)
	}
	return c.Rank(ctx, tr)
}

// runProcesses runs ranks child processes for the named case through
// Launch and returns their exit codes and output. stalled names a rank
// that hangs on purpose (or −1): Launch kills it at a short deadline and
// its code is −1.
func runProcesses(t *testing.T, network, name string, ranks int, fault string, stalled int) ([]int, []string) {
	t.Helper()
	timeout := 2 * time.Minute
	if stalled >= 0 {
		// the others must be done by faultTimeout + 2 s (faultRank)
		timeout = faultTimeout + 5*time.Second/2
	}
	exits, err := Launch(context.Background(), LaunchConfig{
		// A rank that dies on purpose must not get the others killed: they
		// are to notice it themselves.
		Network: network, WorldSize: ranks, Timeout: timeout, Grace: timeout,
		Command: func(int) *exec.Cmd { return exec.Command(os.Args[0], "-test.run=^$") },
		Env:     []string{envChild + "=" + name, envFault + "=" + fault},
	})
	if exits == nil {
		t.Fatal(err)
	}
	codes := make([]int, ranks)
	msgs := make([]string, ranks)
	for r, e := range exits {
		codes[r] = e.ExitCode
		msgs[r] = strings.TrimSpace(e.Stderr + string(e.Stdout))
		if r == stalled && !e.Stalled {
			t.Errorf("rank %d was to hang, but %v", r, e.Err)
		}
	}
	return codes, msgs
}

// processCase reports whether a conformance case runs over real processes:
// all of them without -short, a sample with it.
func processCase(c eptest.Case) bool {
	if !testing.Short() {
		return true
	}
	switch c.Name {
	case "normal/R4/bf16-rand-minus1-zero-rank", "low-latency/R3/fp8-hook-zero-rank", "bad-input/normal/hidden-disagrees":
		return true
	}
	return false
}

// TestConformanceProcesses runs the conformance suite with every rank in
// its own OS process, over TCP and Unix sockets.
func TestConformanceProcesses(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		for _, c := range eptest.Cases() {
			if !processCase(c) {
				continue
			}
			t.Run(network+"/"+c.Name, func(t *testing.T) {
				codes, msgs := runProcesses(t, network, c.Name, c.Ranks, "", -1)
				for r, code := range codes {
					if code != 0 {
						t.Errorf("rank %d exited %d: %s", r, code, msgs[r])
					}
				}
			})
		}
	}
}

// faultWrapper injects a crash or a stall at the n-th put of one rank.
type faultWrapper struct {
	ep.Transport
	mode string
	n    int
}

func (f *faultWrapper) Put(ctx context.Context, dst, off int, bufs ...[]byte) error {
	f.n--
	if f.n == 0 {
		switch f.mode {
		case "die":
			os.Exit(3)
		case "stall":
			select {} // hang without ever returning; the parent kills us
		}
	}
	return f.Transport.Put(ctx, dst, off, bufs...)
}

const faultTimeout = 3 * time.Second

// faultRank runs repeated dispatches and combines; the faulty rank dies or
// stalls mid-dispatch, and every other rank must fail with ErrTransport
// within its deadline and return no result.
func faultRank(ctx context.Context, tr *Transport, spec string) error {
	parts := strings.Split(spec, ":")
	if len(parts) != 3 {
		return fmt.Errorf("bad fault spec %q", spec)
	}
	bad, _ := strconv.Atoi(parts[1])
	puts, _ := strconv.Atoi(parts[2])
	var t ep.Transport = tr
	if tr.Rank() == bad {
		t = &faultWrapper{Transport: tr, mode: parts[0], n: puts}
	}
	b, err := ep.New(ctx, t, ep.Options{NormalBytes: 1 << 22, Timeout: faultTimeout})
	if err != nil {
		return err
	}
	defer b.Close()
	const n, h, k, e = 64, 256, 4, 16
	rng := rand.New(rand.NewPCG(uint64(tr.Rank()), 1))
	idx := make([]int32, n*k)
	for i := range idx {
		idx[i] = int32(rng.IntN(e))
	}
	x := ep.Tokens{N: n, Hidden: h, BF16: make([]tensor.BF16, n*h)}
	for it := 0; it < 5; it++ {
		start := time.Now()
		// Each call gets the Buffer's own deadline (Options.Timeout).
		res, err := b.Dispatch(context.Background(), x, &ep.TopK{K: k, Idx: idx}, ep.DispatchOptions{NumExperts: e})
		if err == nil {
			_, err = b.Combine(context.Background(), res.X.BF16, res.Handle, ep.CombineOptions{})
		}
		if err != nil {
			if !errors.Is(err, ep.ErrTransport) {
				return fmt.Errorf("rank %d: error %v, want one wrapping ep.ErrTransport", tr.Rank(), err)
			}
			if d := time.Since(start); d > faultTimeout+2*time.Second {
				return fmt.Errorf("rank %d: failed after %v, deadline %v", tr.Rank(), d, faultTimeout)
			}
			return nil
		}
	}
	return fmt.Errorf("rank %d: five rounds passed without an error despite the fault", tr.Rank())
}

// TestPeerFaults kills or stalls one rank process mid-dispatch: every other
// rank must report an error within its deadline and leak no goroutine.
func TestPeerFaults(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		for _, mode := range []string{"die", "stall"} {
			t.Run(network+"/"+mode, func(t *testing.T) {
				const ranks, bad = 4, 2
				kill := -1
				if mode == "stall" {
					kill = bad
				}
				// The 14th put is in the middle of the second dispatch's data.
				codes, msgs := runProcesses(t, network, "fault", ranks, fmt.Sprintf("%s:%d:14", mode, bad), kill)
				for r, code := range codes {
					switch {
					case r == bad && mode == "die":
						if code != 3 {
							t.Errorf("faulty rank exited %d, want 3: %s", code, msgs[r])
						}
					case r == bad:
					case code != 0:
						t.Errorf("rank %d exited %d: %s", r, code, msgs[r])
					}
				}
			})
		}
	}
}
