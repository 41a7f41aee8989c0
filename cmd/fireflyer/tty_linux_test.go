package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns both ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pts %d: %v", n, err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestSafetensorsLsTerminalStdin: with no FILE and a terminal on standard
// input, safetensors ls says how to use it and exits 2 instead of waiting
// for a file to be typed.
func TestSafetensorsLsTerminalStdin(t *testing.T) {
	master, tty := openPTY(t)
	done := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() { done <- run([]string{"safetensors", "ls"}, tty, &out, &errb) }()
	select {
	case code := <-done:
		if code != exitUsage || out.Len() != 0 || !strings.Contains(errb.String(), "usage: fireflyer safetensors ls") || !strings.Contains(errb.String(), "terminal") {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 with a usage message", code, out.String(), errb.String())
		}
	case <-time.After(10 * time.Second):
		master.Close() // ends the read (EIO) so that the goroutine returns
		<-done
		t.Fatal("safetensors ls waited on the terminal for 10 s")
	}
}

// TestStdinTerminal: the other subcommands that read their data from
// standard input when no file is named (mla plan, eplb) also exit 2 with a
// usage message instead of waiting for input typed on a terminal.
func TestStdinTerminal(t *testing.T) {
	for _, c := range []struct {
		args  []string
		usage string
	}{
		{[]string{"mla", "plan", "--parts", "3"}, "usage: fireflyer mla plan"},
		{[]string{"eplb", "--replicas", "4", "--groups", "1", "--nodes", "1", "--gpus", "2"}, "usage: fireflyer eplb"},
	} {
		t.Run(c.args[0], func(t *testing.T) {
			master, tty := openPTY(t)
			done := make(chan int, 1)
			var out, errb bytes.Buffer
			go func() { done <- run(c.args, tty, &out, &errb) }()
			select {
			case code := <-done:
				if code != exitUsage || out.Len() != 0 || !strings.Contains(errb.String(), c.usage) || !strings.Contains(errb.String(), "terminal") {
					t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 with a usage message", c.args, code, out.String(), errb.String())
				}
			case <-time.After(10 * time.Second):
				master.Close()
				<-done
				t.Fatalf("%v waited on the terminal for 10 s", c.args)
			}
		})
	}
}

// TestSafetensorsLsPipedStdin: a pipe on standard input (an *os.File that
// is not a terminal) is still read.
func TestSafetensorsLsPipedStdin(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	hdr := `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	go func() {
		var n [8]byte
		n[0] = byte(len(hdr))
		w.Write(n[:])
		w.Write([]byte(hdr))
		w.Write(make([]byte, 8))
		w.Close()
	}()
	var out, errb bytes.Buffer
	if code := run([]string{"safetensors", "ls"}, r, &out, &errb); code != exitOK || !strings.Contains(out.String(), "w F32 [2] 8") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}
