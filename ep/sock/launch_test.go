package sock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
)

// stopSelf stops this process (SIGSTOP) where the OS has it; set by
// launch_unix_test.go.
var stopSelf func()

// launchParentFn runs the launcher process of TestLaunchParentKilled; set
// by launch_unix_test.go.
var launchParentFn func() error

// launchChild is a rank started by Launch: it reads its stdin, joins the
// group, all-gathers its rank and prints what it saw on stdout. The fault
// variable names a rank that fails ("fail:R") or stops itself ("stop:R",
// "stop:all") before joining.
func launchChild(string) error {
	opts, ctx, cancel, err := LaunchedOptions(context.Background())
	defer cancel()
	if err != nil {
		return err
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	mode, who, _ := strings.Cut(os.Getenv(envFault), ":")
	me := who == "all" || who == strconv.Itoa(opts.Rank)
	switch {
	case mode == "hang" && me:
		// Tell the test this rank's pid, then outlive any sane test.
		pid := []byte(strconv.Itoa(os.Getpid()))
		if err := os.WriteFile(filepath.Join(os.Getenv("EP_SOCK_TEST_PIDDIR"), fmt.Sprintf("rank-%d", opts.Rank)), pid, 0o600); err != nil {
			return err
		}
		time.Sleep(10 * time.Minute)
	case mode == "fail" && me:
		fmt.Fprintln(os.Stderr, "some progress first")
		return fmt.Errorf("rank %d refuses: %s", opts.Rank, in)
	case mode == "stop" && me && stopSelf != nil:
		stopSelf()
	}
	tr, err := Dial(ctx, opts)
	if err != nil {
		return err
	}
	defer tr.Close()
	all, err := tr.AllGather(ctx, []byte(strconv.Itoa(opts.Rank)))
	if err != nil {
		return err
	}
	if err := tr.Barrier(ctx); err != nil {
		return err
	}
	fmt.Printf("rank %d of %d read %q gathered %q\n", opts.Rank, opts.WorldSize, in, all)
	return nil
}

func launchCfg(network string, world int, fault string) LaunchConfig {
	return LaunchConfig{
		Network: network, WorldSize: world, Timeout: time.Minute,
		Command: func(int) *exec.Cmd { return exec.Command(os.Args[0], "-test.run=^$") },
		Env:     []string{envChild + "=launch-rank", envFault + "=" + fault},
		Stdin:   func(r int) io.Reader { return strings.NewReader(fmt.Sprintf("in-%d", r)) },
	}
}

func TestLaunch(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		for _, local := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/local=%v", network, local), func(t *testing.T) {
				cfg := launchCfg(network, 3, "")
				var mu sync.Mutex
				var tee bytes.Buffer
				cfg.Stderr = func(int) io.Writer {
					return writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return tee.Write(p) })
				}
				var localOut string
				if local {
					cfg.Local = func(ctx context.Context, o Options) error {
						if o.Rank != 0 || o.WorldSize != 3 || o.Network != network || len(o.Secret) == 0 {
							return fmt.Errorf("local options %+v", o)
						}
						if _, ok := ctx.Deadline(); !ok {
							return errors.New("local context without a deadline")
						}
						tr, err := Dial(ctx, o)
						if err != nil {
							return err
						}
						defer tr.Close()
						all, err := tr.AllGather(ctx, []byte("0"))
						if err != nil {
							return err
						}
						localOut = fmt.Sprintf("%q", all)
						return tr.Barrier(ctx)
					}
				}
				exits, err := Launch(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				if len(exits) != 3 {
					t.Fatalf("%d exits", len(exits))
				}
				for r, e := range exits {
					if e.Rank != r || e.Err != nil || e.Stalled || e.ExitCode != 0 {
						t.Errorf("rank %d: %+v", r, e)
					}
					want := fmt.Sprintf("rank %d of 3 read \"in-%d\" gathered [\"0\" \"1\" \"2\"]\n", r, r)
					if local && r == 0 {
						want = ""
					}
					if string(e.Stdout) != want {
						t.Errorf("rank %d stdout %q, want %q", r, e.Stdout, want)
					}
				}
				if local && localOut != `["0" "1" "2"]` {
					t.Errorf("local rank gathered %s", localOut)
				}
			})
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestLaunchRankFails: one rank exits 1 before joining; Launch reports its
// stderr tail by rank, kills the ranks left waiting after the grace period
// and returns long before the deadline.
func TestLaunchRankFails(t *testing.T) {
	cfg := launchCfg("tcp", 3, "fail:1")
	cfg.Grace = 300 * time.Millisecond
	start := time.Now()
	exits, err := Launch(context.Background(), cfg)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Launch took %v", d)
	}
	if !errors.Is(err, ErrRankFailed) || exits == nil {
		t.Fatalf("err %v, want ErrRankFailed", err)
	}
	if !strings.Contains(err.Error(), "rank 1: exit status 1: some progress first | rank 1 refuses: in-1") {
		t.Errorf("error does not carry rank 1's stderr: %v", err)
	}
	if exits[1].ExitCode != 1 || exits[1].Stalled || !strings.Contains(exits[1].Stderr, "refuses") {
		t.Errorf("rank 1: %+v", exits[1])
	}
	for _, r := range []int{0, 2} {
		if exits[r].Err == nil {
			t.Errorf("rank %d succeeded without rank 1", r)
		}
	}
}

func TestLaunchBadConfig(t *testing.T) {
	for _, c := range []LaunchConfig{
		{Network: "udp", WorldSize: 2},
		{Network: "tcp", WorldSize: 0},
		{Network: "tcp", WorldSize: MaxLaunchRanks + 1},
		{Network: "unix", WorldSize: 2, Timeout: -time.Second},
		{Network: "unix", WorldSize: 2, Grace: -time.Second},
		{Network: "unix", WorldSize: 2, MaxStdout: -1},
	} {
		if _, err := Launch(context.Background(), c); !errors.Is(err, ep.ErrConfig) {
			t.Errorf("%+v: err %v, want ErrConfig", c, err)
		}
	}
	// A command that cannot start fails at once, naming the rank.
	cfg := LaunchConfig{Network: "unix", WorldSize: 2, Command: func(int) *exec.Cmd { return exec.Command("/nonexistent/fireflyer-rank") }}
	exits, err := Launch(context.Background(), cfg)
	if !errors.Is(err, ErrRankFailed) || !strings.Contains(err.Error(), "rank 0") {
		t.Errorf("missing program: err %v", err)
	}
	// The rank that could not start says so in its own result too.
	if len(exits) != 2 || !errors.Is(exits[0].Err, ErrRankFailed) || !strings.Contains(fmt.Sprint(exits[0].Err), "start") {
		t.Errorf("missing program: exits %+v; want rank 0's start error in exits[0].Err", exits)
	}
	// Outside a launched process LaunchedOptions says what is missing.
	if os.Getenv(EnvNetwork) == "" {
		if _, _, cancel, err := LaunchedOptions(context.Background()); !errors.Is(err, ep.ErrConfig) || !strings.Contains(err.Error(), EnvNetwork) {
			t.Errorf("LaunchedOptions: %v", err)
		} else {
			cancel()
		}
	}
}

// TestLaunchCancelled: a context that is done before Launch starts nothing;
// one cancelled during the launch kills the ranks with errors that wrap
// ErrStalled and context.Canceled.
func TestLaunchCancelled(t *testing.T) {
	sleeper := func(int) *exec.Cmd { return exec.Command("sleep", "30") }
	done, cancel := context.WithCancel(context.Background())
	cancel()
	started := false
	cfg := LaunchConfig{Network: "unix", WorldSize: 2, Command: func(r int) *exec.Cmd { started = true; return sleeper(r) }}
	if _, err := Launch(done, cfg); !errors.Is(err, ErrStalled) || !errors.Is(err, context.Canceled) || started {
		t.Errorf("done context: err %v, started %v; want ErrStalled and context.Canceled, nothing started", err, started)
	}
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep command")
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	exits, err := Launch(ctx, LaunchConfig{Network: "unix", WorldSize: 2, Timeout: time.Minute, Command: sleeper})
	if !errors.Is(err, ErrStalled) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled during the launch: err %v; want ErrStalled and context.Canceled", err)
	}
	for _, e := range exits {
		if !e.Stalled || !errors.Is(e.Err, context.Canceled) {
			t.Errorf("rank %d: %+v; want stalled with context.Canceled", e.Rank, e)
		}
	}
	// A deadline of ctx's own is reported as the deadline, not as a
	// cancellation.
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = Launch(ctx, LaunchConfig{Network: "unix", WorldSize: 2, Timeout: time.Minute, Command: sleeper})
	if !errors.Is(err, ErrStalled) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "at the deadline") {
		t.Errorf("ctx deadline: err %v; want ErrStalled and context.DeadlineExceeded, at the deadline", err)
	}
}

// TestLaunchStdoutCap: a rank that writes more than MaxStdout fails.
func TestLaunchStdoutCap(t *testing.T) {
	cfg := launchCfg("unix", 2, "")
	cfg.MaxStdout = 10
	_, err := Launch(context.Background(), cfg)
	if !errors.Is(err, ErrRankFailed) || !strings.Contains(err.Error(), "more than 10 bytes on standard output") {
		t.Fatalf("err %v", err)
	}
}

// freeLoopbackPort avoids the kernel's ephemeral range, from which any
// outgoing connection could take the port before rank 0 listens on it.
func TestFreeLoopbackPortBelowEphemeral(t *testing.T) {
	lo := ephemeralLow()
	if lo <= minLaunchPort+1000 {
		t.Skipf("ephemeral range starts at %d: nothing below it to prefer", lo)
	}
	for range 20 {
		p, err := freeLoopbackPort()
		if err != nil {
			t.Fatal(err)
		}
		if p < minLaunchPort || p >= lo {
			t.Fatalf("port %d outside [%d, %d)", p, minLaunchPort, lo)
		}
	}
}
