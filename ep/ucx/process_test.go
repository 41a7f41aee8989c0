package ucx

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/eptest"
	"github.com/fireflyer-go/fireflyer/ep/sock"
	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// The test binary re-executes itself as the ranks (through sock.Launch,
// the one rank launcher): a child finds its job in the environment, runs
// it over a UCX transport with the UCX_TLS it inherited, and exits 0
// (passed), 1 (failed, the error on stderr) or 3 (an injected crash).
const (
	envChild = "EP_UCX_TEST_CHILD" // "cases:NAME,NAME,...", "fault:MODE:RANK:PUTS", "order:short|long", "putbw:SIZE:COUNT", "bad-tls", "no-lib"
)

// tlsSets are the UCX_TLS values the process tests run with: shared
// memory (posix for messages, cma for zero-copy RMA) and TCP.
var tlsSets = []string{"posix,cma,self", "tcp,self"}

func runChild() bool {
	job := os.Getenv(envChild)
	if job == "" {
		return false
	}
	err := child(job)
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

func child(job string) error {
	opts, ctx, cancel, err := sock.LaunchedOptions(context.Background())
	defer cancel()
	if err != nil {
		return err
	}
	kind, arg, _ := strings.Cut(job, ":")
	switch kind {
	case "cases":
		// One bootstrap and one transport per case, in the same processes.
		for _, name := range strings.Split(arg, ",") {
			c, ok := eptest.Find(name)
			if !ok {
				return fmt.Errorf("no case %q", name)
			}
			tr, err := Dial(ctx, Options{Boot: opts})
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			err = c.Rank(ctx, tr)
			if cerr := tr.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	case "fault":
		tr, err := Dial(ctx, Options{Boot: opts})
		if err != nil {
			return err
		}
		defer tr.Close()
		return faultRank(tr, arg)
	case "order":
		size, rounds := 4<<20, 20
		if arg == "short" {
			size, rounds = 1<<20, 6
		}
		tr, err := Dial(ctx, Options{Boot: opts})
		if err != nil {
			return err
		}
		defer tr.Close()
		reg, err := tr.Register(ctx, size)
		if err != nil {
			return err
		}
		return orderingRank(ctx, tr, reg, size, rounds)
	case "putbw":
		return putBandwidthRank(ctx, opts, arg)
	case "bad-tls", "no-lib":
		start := time.Now()
		tr, err := Dial(ctx, Options{Boot: opts})
		if err == nil {
			tr.Close()
			return fmt.Errorf("Dial with UCX_TLS=%q %s=%q succeeded", os.Getenv("UCX_TLS"), EnvLibUCP, os.Getenv(EnvLibUCP))
		}
		if d := time.Since(start); d > 10*time.Second {
			return fmt.Errorf("Dial failed only after %v: %v", d, err)
		}
		fmt.Println(err) // the parent checks the message
		return nil
	}
	return fmt.Errorf("bad job %q", job)
}

// launch runs ranks child processes with job and extra environment
// through sock.Launch over a TCP bootstrap; stalled names a rank that
// hangs on purpose (or −1). It returns each rank's exit code and output.
func launch(t *testing.T, ranks int, job string, env []string, timeout time.Duration, stalled int) ([]int, []string) {
	t.Helper()
	exits, err := sock.Launch(context.Background(), sock.LaunchConfig{
		// A rank that dies on purpose must not get the others killed: they
		// are to notice it themselves.
		Network: "tcp", WorldSize: ranks, Timeout: timeout, Grace: timeout,
		Command: func(int) *exec.Cmd { return exec.Command(os.Args[0], "-test.run=^$") },
		Env:     append([]string{envChild + "=" + job}, env...),
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

func needUCX(t testing.TB) {
	t.Helper()
	if _, err := load(); err != nil {
		t.Skipf("UCX is not installed here (%v)", err)
	}
}

// processCase reports whether a conformance case runs over real
// processes: all of them without -short, a sample with it.
func processCase(c eptest.Case) bool {
	if !testing.Short() {
		return true
	}
	switch c.Name {
	case "normal/R4/bf16-rand-minus1-zero-rank", "normal/R3/fp8-hidden-200-bias1", "low-latency/R3/fp8-hook-zero-rank",
		"low-latency/R4/fp8-ue8m0-zero-copy", "bad-input/normal/hidden-disagrees":
		return true
	}
	return false
}

// TestConformanceProcesses runs the ep conformance suite with every rank
// in its own OS process, over UCX shared memory (UCX_TLS=posix,cma,self)
// and TCP (UCX_TLS=tcp,self). The cases of one group size run one after
// another in the same processes, each over a fresh bootstrap and
// transport.
func TestConformanceProcesses(t *testing.T) {
	needUCX(t)
	byRanks := map[int][]string{}
	for _, c := range eptest.Cases() {
		if processCase(c) {
			byRanks[c.Ranks] = append(byRanks[c.Ranks], c.Name)
		}
	}
	var sizes []int
	for r := range byRanks {
		sizes = append(sizes, r)
	}
	sort.Ints(sizes)
	for _, tls := range tlsSets {
		for _, r := range sizes {
			t.Run(fmt.Sprintf("%s/R%d", tls, r), func(t *testing.T) {
				codes, msgs := launch(t, r, "cases:"+strings.Join(byRanks[r], ","), []string{"UCX_TLS=" + tls}, 5*time.Minute, -1)
				for rank, code := range codes {
					if code != 0 {
						t.Errorf("rank %d exited %d: %s", rank, code, msgs[rank])
					}
				}
			})
		}
	}
}

// TestSignalOrderingProcesses is TestSignalOrdering between two rank
// processes, over shared memory and TCP.
func TestSignalOrderingProcesses(t *testing.T) {
	needUCX(t)
	job := "order:long"
	if testing.Short() {
		job = "order:short"
	}
	for _, tls := range tlsSets {
		t.Run(tls, func(t *testing.T) {
			codes, msgs := launch(t, 2, job, []string{"UCX_TLS=" + tls}, 3*time.Minute, -1)
			for r, code := range codes {
				if code != 0 {
					t.Errorf("rank %d exited %d: %s", r, code, msgs[r])
				}
			}
		})
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
// within its deadline.
func faultRank(tr *Transport, spec string) error {
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
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

// TestPeerFaults kills or stalls one rank process mid-dispatch, over
// shared memory and over TCP: every other rank must report an error
// wrapping ep.ErrTransport within its deadline and leak no goroutine.
func TestPeerFaults(t *testing.T) {
	needUCX(t)
	for _, tls := range tlsSets {
		for _, mode := range []string{"die", "stall"} {
			if testing.Short() && mode == "stall" && tls != tlsSets[0] {
				continue
			}
			t.Run(tls+"/"+mode, func(t *testing.T) {
				const ranks, bad = 4, 2
				kill := -1
				if mode == "stall" {
					kill = bad
				}
				// The 14th put is in the middle of the second dispatch's data.
				codes, msgs := launch(t, ranks, fmt.Sprintf("fault:%s:%d:14", mode, bad), []string{"UCX_TLS=" + tls}, faultTimeout+4*time.Second, kill)
				for r, code := range codes {
					switch {
					case r == bad && mode == "die":
						if code != 3 {
							t.Errorf("faulty rank exited %d, want 3: %s", code, msgs[r])
						}
					case r == bad:
					case code != 0 && tls == "tcp,self" && mode == "die" && ucxPutHandlerAbort(msgs[r]):
						// A known UCX 1.13 defect, not this package's: over
						// tcp, RMA is emulated with active messages, and the
						// target's put handler aborts the process when its
						// acknowledgement to a peer that just died fails
						// ("ucp_request.inl: Fatal: unexpected error"). The
						// rank still did not hang; docs/ucx.md lists it.
						t.Logf("rank %d was aborted inside UCX (ucp_put_handler) when rank %d died", r, bad)
					case code != 0:
						t.Errorf("rank %d exited %d: %s", r, code, msgs[r])
					}
				}
			})
		}
	}
}

// ucxPutHandlerAbort reports whether a rank's output is UCX's fatal abort
// in ucp_put_handler (see TestPeerFaults).
func ucxPutHandlerAbort(msg string) bool {
	return strings.Contains(msg, "ucp_put_handler") || strings.Contains(msg, "Fatal: unexpected error")
}

// TestBadTLS: a UCX_TLS naming no transport of this host fails Dial on
// every rank with an error that says so, instead of a crash or a hang.
func TestBadTLS(t *testing.T) {
	needUCX(t)
	codes, msgs := launch(t, 2, "bad-tls", []string{"UCX_TLS=nosuchtransport"}, time.Minute, -1)
	for r, code := range codes {
		if code != 0 {
			t.Errorf("rank %d exited %d: %s", r, code, msgs[r])
			continue
		}
		if !strings.Contains(msgs[r], "ucp_init") || !strings.Contains(msgs[r], "UCX_TLS") {
			t.Errorf("rank %d: unclear error %q", r, msgs[r])
		}
		t.Logf("rank %d: %s", r, msgs[r])
	}
}

// TestMissingLibrary: without libucp, Dial fails with ErrUnavailable
// naming the library and how to install it.
func TestMissingLibrary(t *testing.T) {
	codes, msgs := launch(t, 1, "no-lib", []string{EnvLibUCP + "=/nonexistent/libucp.so.0"}, time.Minute, -1)
	if codes[0] != 0 {
		t.Fatalf("exited %d: %s", codes[0], msgs[0])
	}
	for _, want := range []string{ErrUnavailable.Error(), "/nonexistent/libucp.so.0", "apt-get install libucx0"} {
		if !strings.Contains(msgs[0], want) {
			t.Errorf("error %q does not mention %q", msgs[0], want)
		}
	}
}
