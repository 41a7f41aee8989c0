package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopRankProcess waits for the child process of this test that runs as
// rank `rank` of a sock.Launch group and stops it with SIGSTOP mid-run, as
// a user would with kill -STOP (for commands whose ranks live long). Call
// it before starting the command; wait reports the pid (0 when none
// appeared).
func stopRankProcess(t *testing.T, rank int, within time.Duration) (wait func() int) {
	t.Helper()
	pid := make(chan int, 1)
	go func() { pid <- findRankProcess(t, rank, within, true) }()
	return func() int { return <-pid }
}

// stopRankAtStart makes rank `rank` of the next sock.Launch group of this
// test stop itself with SIGSTOP before doing any work (see TestMain), for
// commands whose ranks may finish before a poller could catch them; wait
// reports the stopped process's pid.
func stopRankAtStart(t *testing.T, rank int, within time.Duration) (wait func() int) {
	t.Helper()
	t.Setenv(stopRankEnv, strconv.Itoa(rank))
	pid := make(chan int, 1)
	go func() { pid <- findRankProcess(t, rank, within, false) }()
	return func() int { return <-pid }
}

// findRankProcess polls /proc for the child of this test that runs as rank
// `rank`; with stop it sends SIGSTOP, else it waits until the process has
// stopped itself.
func findRankProcess(t *testing.T, rank int, within time.Duration, stop bool) int {
	me := strconv.Itoa(os.Getpid())
	want := []byte("RANK=" + strconv.Itoa(rank))
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		stats, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, st := range stats {
			b, err := os.ReadFile(st)
			if err != nil {
				continue
			}
			i := bytes.LastIndexByte(b, ')')
			f := strings.Fields(string(b[i+1:]))
			if len(f) < 2 || f[1] != me {
				continue
			}
			env, err := os.ReadFile(filepath.Join(filepath.Dir(st), "environ"))
			if err != nil || !bytes.Contains(env, []byte("\x00EP_NETWORK=")) {
				continue
			}
			for _, kv := range bytes.Split(env, []byte{0}) {
				if bytes.Equal(kv, want) {
					pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(st)))
					if stop {
						if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
							t.Error(err)
						}
						return pid
					}
					if f[0] == "T" || f[0] == "t" {
						return pid
					}
					break // not stopped yet
				}
			}
		}
	}
	t.Errorf("no rank %d process appeared within %v", rank, within)
	return 0
}

func checkReaped(t *testing.T, pid int) {
	t.Helper()
	if pid > 0 {
		if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
			t.Errorf("stopped rank process %d still exists (kill 0: %v)", pid, err)
		}
	}
}

// TestEPBenchStoppedRank: `ep bench --transport tcp` with one rank stopped
// (SIGSTOP) used to block forever in the per-iteration barrier. Now every
// wait has the --timeout deadline: the command exits 1 within it, names
// the stopped rank, kills it, and reports rank 0's real error (it used to
// print nothing after "rank 0: exit status 1:").
func TestEPBenchStoppedRank(t *testing.T) {
	const timeout = 6 * time.Second
	waitPid := stopRankProcess(t, 1, 10*time.Second)
	start := time.Now()
	code, stdout, stderr := runCLI(t, "", "ep", "bench", "--transport", "tcp", "--ranks", "3", "--tokens", "16", "--hidden", "128",
		"--topk", "2", "--experts", "6", "--iters", "100000", "--timeout", timeout.String())
	took := time.Since(start)
	p := waitPid()
	if code != exitFail || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if took > timeout+3*time.Second {
		t.Errorf("took %v with --timeout %v", took, timeout)
	}
	if !strings.Contains(stderr, "rank 1 was stopped by a signal") {
		t.Errorf("stderr does not name the stopped rank:\n%s", stderr)
	}
	i := strings.Index(stderr, "rank 0: exit status 1: ")
	if i < 0 || !strings.HasPrefix(stderr[i+len("rank 0: exit status 1: "):], "fireflyer ep bench: rank 0: ") {
		t.Errorf("rank 0's failure without its message:\n%s", stderr)
	}
	checkReaped(t, p)
}

// TestDemoStoppedRank: `demo --transport tcp --ranks 4 --timeout T` with
// one rank process stopped used to leave the parent waiting forever; now
// it exits 1 within T, naming the stopped rank.
func TestDemoStoppedRank(t *testing.T) {
	const timeout = 8 * time.Second
	waitPid := stopRankAtStart(t, 2, 10*time.Second)
	start := time.Now()
	code, _, stderr := runCLI(t, "", "demo", "--transport", "tcp", "--ranks", "4", "--scale", "64", "--batch", "8", "--prefix", "24",
		"--timeout", timeout.String())
	took := time.Since(start)
	p := waitPid()
	if code != exitFail {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if took > timeout+3*time.Second {
		t.Errorf("took %v with --timeout %v", took, timeout)
	}
	if !strings.Contains(stderr, "rank 2 was stopped by a signal") {
		t.Errorf("stderr does not name the stopped rank:\n%s", stderr)
	}
	checkReaped(t, p)
}
