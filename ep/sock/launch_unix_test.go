//go:build linux

package sock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	stopSelf = func() { _ = syscall.Kill(syscall.Getpid(), syscall.SIGSTOP) }
	launchParentFn = launchParent
}

// TestLaunchStoppedRank: a rank process stopped with SIGSTOP (it stops
// itself before joining) defeats no deadline: the other ranks time out on
// their own, Launch kills the stopped one and reports it by number, well
// within the launch timeout.
func TestLaunchStoppedRank(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			cfg := launchCfg(network, 4, "stop:2")
			cfg.Timeout = 5 * time.Second
			cfg.Grace = 300 * time.Millisecond
			start := time.Now()
			exits, err := Launch(context.Background(), cfg)
			if d := time.Since(start); d > cfg.Timeout+2*time.Second {
				t.Errorf("Launch returned after %v, timeout %v", d, cfg.Timeout)
			}
			if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), "rank 2 was stopped by a signal") {
				t.Fatalf("err %v, want rank 2 reported stalled", err)
			}
			if e := exits[2]; !e.Stalled || !e.Stopped || e.ExitCode != -1 {
				t.Errorf("rank 2: %+v", e)
			}
			for _, r := range []int{0, 1, 3} {
				if e := exits[r]; e.Err == nil || e.Stopped {
					t.Errorf("rank %d: %+v", r, e)
				}
			}
		})
	}
}

// TestLaunchDeadline: when every rank is stopped nobody fails on its own;
// the launch deadline kills them all.
func TestLaunchDeadline(t *testing.T) {
	cfg := launchCfg("unix", 2, "stop:all")
	cfg.Timeout = 2 * time.Second
	start := time.Now()
	exits, err := Launch(context.Background(), cfg)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Launch returned after %v", d)
	}
	if !errors.Is(err, ErrStalled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want ErrStalled and DeadlineExceeded", err)
	}
	for r, e := range exits {
		if !e.Stalled || !e.Stopped {
			t.Errorf("rank %d: %+v", r, e)
		}
	}
	if !strings.Contains(err.Error(), "rank 0 was stopped by a signal at the deadline") || !strings.Contains(err.Error(), "rank 1 was stopped") {
		t.Errorf("message: %v", err)
	}
}

// envPidDir names the directory where "hang" ranks write their pids.
const envPidDir = "EP_SOCK_TEST_PIDDIR" // also read by launchChild

// launchParent is a launcher process (the test binary again) whose ranks
// hang; the test kills it.
func launchParent() error {
	cfg := launchCfg("unix", 2, "hang:all")
	cfg.Env = append(cfg.Env, envPidDir+"="+os.Getenv(envPidDir))
	_, err := Launch(context.Background(), cfg)
	return err
}

// TestLaunchParentKilled: when the launching process is killed (SIGKILL,
// so it cleans up nothing), the kernel kills its rank processes too.
func TestLaunchParentKilled(t *testing.T) {
	dir := t.TempDir()
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), envChild+"=launch-parent", envPidDir+"="+dir)
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer parent.Process.Kill()
	var pids []int
	for deadline := time.Now().Add(30 * time.Second); len(pids) < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the ranks did not start within 30 s")
		}
		pids = pids[:0]
		for r := range 2 {
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("rank-%d", r)))
			if err != nil {
				break
			}
			pid, _ := strconv.Atoi(string(b))
			pids = append(pids, pid)
		}
	}
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	defer func() { // whatever happens, leave no rank behind
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}()
	for _, pid := range pids {
		deadline := time.Now().Add(10 * time.Second)
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("rank process %d still runs 10 s after its launcher was killed", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// alive reports whether pid runs (a zombie nobody reaped has ended).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}
