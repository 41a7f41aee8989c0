package sock

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
)

// Environment variables that Launch sets in every rank process, beside
// MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE and EP_SECRET (read by
// OptionsFromEnv).
const (
	// EnvNetwork holds the transport's network, "tcp" or "unix"; a process
	// with it set was started by Launch (see Launched).
	EnvNetwork = "EP_NETWORK"
	// EnvTimeout holds the time the rank has left, as a Go duration
	// ("19.5s"): LaunchedOptions turns it into the rank's deadline.
	EnvTimeout = "EP_TIMEOUT"
)

// DefaultLaunchTimeout bounds a Launch whose LaunchConfig.Timeout is zero.
const DefaultLaunchTimeout = 10 * time.Minute

// MaxLaunchRanks bounds LaunchConfig.WorldSize: Launch starts one process
// per rank on this host.
const MaxLaunchRanks = 1024

// Errors of Launch. Every rank that did not succeed gives one error wrapping
// ErrRankFailed (it exited non-zero, could not start, or its in-process
// function failed) or ErrStalled (it was still running when Launch killed
// it); Launch returns them joined.
var (
	ErrRankFailed = errors.New("sock: rank failed")
	ErrStalled    = errors.New("sock: rank stalled")
)

// LaunchConfig configures Launch.
type LaunchConfig struct {
	// Network is "tcp" or "unix".
	Network string
	// WorldSize is the number of ranks, 1..MaxLaunchRanks.
	WorldSize int
	// Local, when non-nil, is rank 0, run in this process: Launch calls it
	// in a goroutine with rank 0's Options (pass them to Dial) and a
	// context that ends at the ranks' deadline or when another rank fails,
	// and starts only ranks 1…WorldSize−1 as processes. Local must return
	// once its context is done. When nil, every rank is a process.
	Local func(ctx context.Context, opts Options) error
	// Command returns the command of one rank process; Launch adds the
	// bootstrap variables to its Env (os.Environ() when Env is nil) and
	// sets its Stdin, Stdout and Stderr. Nil means the current executable
	// (os.Executable) with Args.
	Command func(rank int) *exec.Cmd
	// Args are the arguments of the default command (after the program
	// name), for example a hidden subcommand that enters the rank role.
	Args []string
	// Env holds extra "KEY=value" entries for every rank process.
	Env []string
	// Stdin, when non-nil, returns what rank r reads on standard input (a
	// nil reader: nothing). A rank's inputs can travel this way instead of
	// through files.
	Stdin func(rank int) io.Reader
	// Stderr, when non-nil, returns a writer (or nil) that also receives
	// rank r's standard error as it is written, say for a progress bar.
	// Launch keeps the last StderrTail bytes of it either way.
	Stderr func(rank int) io.Writer
	// MaxStdout bounds the standard output kept per rank (default 1 GiB);
	// a rank that writes more fails.
	MaxStdout int64
	// Timeout bounds the whole launch, from the start of the first process
	// to the exit of the last one (zero: DefaultLaunchTimeout; negative is
	// an error). The ranks get a slightly earlier deadline (EnvTimeout),
	// so that they can fail with their own error before Launch kills them.
	Timeout time.Duration
	// Grace is how long the other ranks get to exit on their own after the
	// first rank fails, before Launch kills them (default 1 s).
	Grace time.Duration
	// Secret is the HMAC secret every rank uses (EP_SECRET); nil means a
	// fresh random one.
	Secret []byte
}

// StderrTail is how many bytes of each rank's standard error Launch keeps.
const StderrTail = 8 << 10

// RankExit is how one rank ended.
type RankExit struct {
	// Rank is the rank's number.
	Rank int
	// Stdout is everything the rank process wrote on standard output
	// (empty for the Local rank).
	Stdout []byte
	// Stderr is the last StderrTail bytes of its standard error.
	Stderr string
	// ExitCode is the process's exit code; −1 when it was killed or never
	// ran, 0 for a Local rank that returned nil.
	ExitCode int
	// Err is nil when the rank succeeded, else an error wrapping
	// ErrRankFailed or ErrStalled (also part of Launch's error).
	Err error
	// Stalled reports that the rank was still running when Launch killed
	// it (at the deadline, or after another rank failed).
	Stalled bool
	// Stopped reports that a stalled rank had been stopped by a signal
	// (SIGSTOP, a debugger) when it was killed. Linux only.
	Stopped bool
}

// Launch runs an expert-parallel group of cfg.WorldSize ranks on this host:
// it starts one process per rank (this program again by default) with the
// bootstrap environment that OptionsFromEnv and LaunchedOptions read, a
// rendezvous address of its own (a free loopback port, or a socket in a
// fresh temporary directory removed afterwards) and a shared secret; it
// collects every rank's exit status, standard output and the tail of its
// standard error. When a rank fails, the others get cfg.Grace to finish,
// then every rank still running is killed (SIGKILL, which ends stopped
// processes too) and reported as stalled; at the deadline (cfg.Timeout or
// ctx's, whichever is first) the same happens. Launch returns when every
// process has been reaped and Local has returned. On Linux the ranks are
// also killed by the kernel if the launching process itself dies (a
// parent-death signal, SIGKILL, unless cfg.Command set its own), so a
// killed launcher leaves no ranks behind; elsewhere they end at their own
// deadline.
//
// The result is indexed by rank and is returned even when err is not nil;
// err is nil only when every rank succeeded (a rank that could not start
// has that error in its RankExit.Err). Bad configuration gives an error
// wrapping ep.ErrConfig and starts nothing, and so does a ctx that is already
// done (an error wrapping ErrStalled and ctx.Err()); when ctx is cancelled
// during the launch, the killed ranks' errors wrap ErrStalled and ctx.Err().
func Launch(ctx context.Context, cfg LaunchConfig) ([]RankExit, error) {
	switch {
	case cfg.Network != "tcp" && cfg.Network != "unix":
		return nil, fmt.Errorf("%w: LaunchConfig.Network = %q, want tcp or unix", ep.ErrConfig, cfg.Network)
	case cfg.WorldSize < 1 || cfg.WorldSize > MaxLaunchRanks:
		return nil, fmt.Errorf("%w: LaunchConfig.WorldSize = %d outside [1, %d]", ep.ErrConfig, cfg.WorldSize, MaxLaunchRanks)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("%w: LaunchConfig.Timeout = %v is negative", ep.ErrConfig, cfg.Timeout)
	case cfg.Grace < 0:
		return nil, fmt.Errorf("%w: LaunchConfig.Grace = %v is negative", ep.ErrConfig, cfg.Grace)
	case cfg.MaxStdout < 0:
		return nil, fmt.Errorf("%w: LaunchConfig.MaxStdout = %d is negative", ep.ErrConfig, cfg.MaxStdout)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultLaunchTimeout
	}
	grace := cfg.Grace
	if grace == 0 {
		grace = time.Second
	}
	maxOut := cfg.MaxStdout
	if maxOut == 0 {
		maxOut = 1 << 30
	}
	start := time.Now()
	deadline := start.Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if !deadline.After(start) {
		return nil, fmt.Errorf("%w: launch of %d ranks: %w", ErrStalled, cfg.WorldSize, context.DeadlineExceeded)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: launch of %d ranks: %w", ErrStalled, cfg.WorldSize, err)
	}
	// The ranks' own deadline comes a little earlier, so that a rank that
	// waits on a stalled peer reports that itself.
	rankDeadline := deadline.Add(-min(2*time.Second, deadline.Sub(start)/10))
	hard, cancelHard := context.WithDeadline(ctx, deadline)
	defer cancelHard()

	base := Options{Network: cfg.Network, WorldSize: cfg.WorldSize, MasterAddr: "127.0.0.1"}
	if cfg.Network == "unix" {
		dir, err := os.MkdirTemp("", "fireflyer-ranks-")
		if err != nil {
			return nil, fmt.Errorf("%w: launch: %w", ep.ErrTransport, err)
		}
		defer os.RemoveAll(dir)
		base.MasterAddr = filepath.Join(dir, "rendezvous.sock")
	} else {
		port, err := freeLoopbackPort()
		if err != nil {
			return nil, fmt.Errorf("%w: launch: %w", ep.ErrTransport, err)
		}
		base.MasterPort = port
	}
	base.Secret = cfg.Secret
	if base.Secret == nil {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("%w: launch: %w", ep.ErrTransport, err)
		}
		base.Secret = []byte(hex.EncodeToString(b[:]))
	}
	exe := ""
	if cfg.Command == nil {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("%w: launch: %w", ep.ErrConfig, err)
		}
	}

	exits := make([]RankExit, cfg.WorldSize)
	for r := range exits {
		exits[r] = RankExit{Rank: r, ExitCode: -1}
	}
	type done struct {
		rank int
		err  error
	}
	doneCh := make(chan done, cfg.WorldSize)
	cmds := make([]*exec.Cmd, cfg.WorldSize)
	outs := make([]*cappedBuffer, cfg.WorldSize)
	errs := make([]*tailBuffer, cfg.WorldSize)
	running := make([]bool, cfg.WorldSize)
	first := 0
	if cfg.Local != nil {
		first = 1
	}
	startErr, startRank := error(nil), -1
	for r := first; r < cfg.WorldSize; r++ {
		var cmd *exec.Cmd
		if cfg.Command != nil {
			cmd = cfg.Command(r)
		} else {
			cmd = exec.Command(exe, cfg.Args...)
		}
		if cmd == nil {
			startErr, startRank = fmt.Errorf("%w: rank %d: LaunchConfig.Command returned nil", ErrRankFailed, r), r
			break
		}
		env := cmd.Env
		if env == nil {
			env = os.Environ()
		}
		env = append(append([]string(nil), env...), cfg.Env...)
		env = append(env,
			EnvNetwork+"="+cfg.Network, EnvTimeout+"="+time.Until(rankDeadline).String(),
			"RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(cfg.WorldSize),
			"MASTER_ADDR="+base.MasterAddr, "MASTER_PORT="+strconv.Itoa(base.MasterPort),
			"EP_SECRET="+string(base.Secret))
		cmd.Env = env
		if cfg.Stdin != nil {
			if in := cfg.Stdin(r); in != nil {
				cmd.Stdin = in
			}
		}
		outs[r] = &cappedBuffer{max: maxOut}
		errs[r] = &tailBuffer{}
		if cfg.Stderr != nil {
			errs[r].tee = cfg.Stderr(r)
		}
		cmd.Stdout, cmd.Stderr = outs[r], errs[r]
		// A rank that leaves a child holding its pipes must not hold up Wait.
		cmd.WaitDelay = time.Second
		dieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			startErr, startRank = fmt.Errorf("%w: rank %d: start %s: %w", ErrRankFailed, r, cmd.Path, err), r
			break
		}
		cmds[r], running[r] = cmd, true
		go func() { doneCh <- done{r, cmd.Wait()} }()
	}

	local, cancelLocal := context.WithDeadline(hard, rankDeadline)
	defer cancelLocal()
	if cfg.Local != nil && startErr == nil {
		opts := base
		opts.Rank = 0
		opts.Timeout = time.Until(rankDeadline)
		running[0] = true
		go func() {
			err := cfg.Local(local, opts)
			doneCh <- done{0, err}
		}()
	}

	// kill ends every rank still running; why says when it happened.
	var killWhy string
	atDeadline := false
	var cancelled error // ctx's error when the caller cancelled the launch
	kill := func(why string) {
		killWhy = why
		cancelLocal()
		for r, cmd := range cmds {
			if cmd == nil || !running[r] {
				continue
			}
			exits[r].Stalled = true
			exits[r].Stopped = processStopped(cmd.Process.Pid)
			_ = cmd.Process.Kill()
		}
	}
	firstFail := -1
	var graceC <-chan time.Time
	hardDone := hard.Done()
	if startErr != nil {
		kill("when another rank could not start")
		hardDone = nil
	}
	for pending := countTrue(running); pending > 0; {
		select {
		case d := <-doneCh:
			running[d.rank] = false
			pending--
			exits[d.rank].Err = d.err
			if d.err != nil && firstFail < 0 && killWhy == "" {
				firstFail = d.rank
				cancelLocal()
				graceC = time.After(grace)
			}
		case <-graceC:
			graceC = nil
			if killWhy == "" {
				kill(fmt.Sprintf("%v after rank %d failed", grace, firstFail))
			}
		case <-hardDone:
			hardDone = nil
			if killWhy == "" {
				why := fmt.Sprintf("at the deadline (%v after the start)", deadline.Sub(start).Round(time.Millisecond))
				// ctx's own deadline is the launch's deadline too.
				if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
					why, cancelled = "when the launch was cancelled", err
				} else {
					atDeadline = true
				}
				kill(why)
			}
		}
	}

	// Assemble the outcome: stalled ranks first (they are usually the
	// cause), then the ranks that failed on their own.
	var stalled, failed []error
	for r := range exits {
		e := &exits[r]
		if cmds[r] != nil {
			e.Stdout = outs[r].buf.Bytes()
			e.Stderr = errs[r].String()
			e.ExitCode = cmds[r].ProcessState.ExitCode()
		} else if r == 0 && cfg.Local != nil && e.Err == nil && !e.Stalled && startErr == nil {
			e.ExitCode = 0
		}
		switch {
		case r == startRank:
			e.Err = startErr // also first in Launch's error
		case e.Stalled:
			state := "was still running"
			if e.Stopped {
				state = "was stopped by a signal"
			}
			var cause error = ErrStalled
			if atDeadline {
				cause = fmt.Errorf("%w: %w", ErrStalled, context.DeadlineExceeded)
			} else if cancelled != nil {
				cause = fmt.Errorf("%w: %w", ErrStalled, cancelled)
			}
			e.Err = fmt.Errorf("%w: rank %d %s %s; killed%s", cause, r, state, killWhy, lastLines(e.Stderr))
			stalled = append(stalled, e.Err)
		case e.Err != nil && cmds[r] == nil:
			e.Err = fmt.Errorf("%w: rank %d: %w", ErrRankFailed, r, e.Err)
			failed = append(failed, e.Err)
		case e.Err != nil:
			msg := lastLines(e.Stderr)
			if outs[r].over {
				msg = fmt.Sprintf(": wrote more than %d bytes on standard output", maxOut)
			} else if msg == "" {
				msg = " (no message on standard error)"
			}
			e.Err = fmt.Errorf("%w: rank %d: %v%s", ErrRankFailed, r, e.Err, msg)
			failed = append(failed, e.Err)
		}
	}
	all := append(stalled, failed...)
	if startErr != nil {
		all = append([]error{startErr}, all...)
	}
	return exits, errors.Join(all...)
}

func countTrue(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

// lastLines returns ": " and the last three non-empty lines of s joined by
// " | ", or "" when s has none.
func lastLines(s string) string {
	var keep []string
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0 && len(keep) < 3; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return ""
	}
	for i, j := 0, len(keep)-1; i < j; i, j = i+1, j-1 {
		keep[i], keep[j] = keep[j], keep[i]
	}
	return ": " + strings.Join(keep, " | ")
}

// processStopped reports whether the process is in the stopped or traced
// state, from /proc/PID/stat; false where that cannot be read.
func processStopped(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] == 'T' || b[i+2] == 't'
}

// freeLoopbackPort returns a loopback TCP port that was free a moment ago,
// for rank 0 to listen on. It prefers a random port below the kernel's
// ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range), which
// no outgoing connection is ever given: a port from that range could be
// taken, between this check and rank 0's listen, by any connection another
// process opens.
func freeLoopbackPort() (int, error) {
	if lo := ephemeralLow(); lo > minLaunchPort+1000 {
		for range 64 {
			port := minLaunchPort + mrand.IntN(lo-minLaunchPort)
			if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
				l.Close()
				return port, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// minLaunchPort is the lowest port freeLoopbackPort picks (above the
// registered services people run on a development box).
const minLaunchPort = 20000

// ephemeralLow returns the first port of the kernel's ephemeral range, or 0
// where it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo > 65535 {
		return 0
	}
	return lo
}

// cappedBuffer keeps at most max bytes and fails the write beyond them.
type cappedBuffer struct {
	buf  bytes.Buffer
	max  int64
	over bool
}

// Write appends p, failing once the buffer would exceed max bytes.
func (c *cappedBuffer) Write(p []byte) (int, error) {
	if int64(c.buf.Len())+int64(len(p)) > c.max {
		c.over = true
		return 0, fmt.Errorf("more than %d bytes on standard output", c.max)
	}
	return c.buf.Write(p)
}

// tailBuffer keeps the last StderrTail bytes written and copies every write
// to tee, when set (a failing tee is dropped, not fatal).
type tailBuffer struct {
	b   []byte
	tee io.Writer
}

// Write copies p to tee, appends it to the kept bytes and trims them to the
// last StderrTail; it never fails.
func (t *tailBuffer) Write(p []byte) (int, error) {
	if t.tee != nil {
		if _, err := t.tee.Write(p); err != nil {
			t.tee = nil
		}
	}
	t.b = append(t.b, p...)
	if len(t.b) > StderrTail {
		t.b = append(t.b[:0], t.b[len(t.b)-StderrTail:]...)
	}
	return len(p), nil
}

// String returns the kept tail.
func (t *tailBuffer) String() string { return string(t.b) }

// Launched reports whether this process is a rank started by Launch.
func Launched() bool { return os.Getenv(EnvNetwork) != "" }

// LaunchedOptions returns the Options of a rank process started by Launch,
// read from its environment (OptionsFromEnv with EnvNetwork), with Timeout
// set to the time the rank has left, and a context derived from ctx that
// ends at the rank's deadline: use it for every wait of the rank. Errors
// name the variable and wrap ep.ErrConfig.
func LaunchedOptions(ctx context.Context) (Options, context.Context, context.CancelFunc, error) {
	network := os.Getenv(EnvNetwork)
	if network == "" {
		return Options{}, ctx, func() {}, fmt.Errorf("%w: environment variable %s is not set (not started by sock.Launch)", ep.ErrConfig, EnvNetwork)
	}
	opts, err := OptionsFromEnv(network)
	if err != nil {
		return opts, ctx, func() {}, err
	}
	left, err := envTimeout()
	if err != nil {
		return opts, ctx, func() {}, err
	}
	opts.Timeout = left
	rctx, cancel := context.WithTimeout(ctx, left)
	return opts, rctx, cancel, nil
}

// envTimeout parses EnvTimeout, the time a launched rank has left. Errors
// name the variable and wrap ep.ErrConfig.
func envTimeout() (time.Duration, error) {
	v := os.Getenv(EnvTimeout)
	left, err := time.ParseDuration(v)
	if err != nil || left <= 0 {
		return 0, fmt.Errorf("%w: %s=%q is not a positive duration", ep.ErrConfig, EnvTimeout, v)
	}
	return left, nil
}
