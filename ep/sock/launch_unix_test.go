//go:build linux

package sock

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	stopSelf = func() { _ = syscall.Kill(syscall.Getpid(), syscall.SIGSTOP) }
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
