package fs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/fireflyer-go/fireflyer/fs"
)

// TestNUMA checks WithNUMA(0) binds buffer memory to node 0 (the policy
// and the pages in /proc/self/numa_maps) and that a node the machine lacks
// is a clear ErrInvalid naming it.
func TestNUMA(t *testing.T) {
	if _, err := os.Stat("/sys/devices/system/node/node0"); err != nil {
		t.Skip("no NUMA topology in /sys")
	}
	for _, be := range []string{"mem", "posix", "hf3fs"} {
		t.Run(be, func(t *testing.T) {
			var c *fs.Client
			if be == "hf3fs" {
				_, c = newHF3FS(t, nil, fs.WithNUMA(0)) // shared memory registered with a daemon
			} else {
				var err error
				if c, err = fs.Open(context.Background(), t.TempDir(), fs.WithBackend(be), fs.WithNUMA(0)); err != nil {
					t.Fatal(err)
				}
			}
			defer c.Close()
			b, err := c.NewBuffer(64<<10, fs.BufferOpts{})
			if err != nil {
				t.Fatal(err)
			}
			mem := b.Bytes()
			for i := 0; i < len(mem); i += 4096 {
				mem[i] = 1
			}
			maps, err := os.ReadFile("/proc/self/numa_maps")
			if err != nil {
				t.Skipf("no numa_maps: %v", err)
			}
			want := fmt.Sprintf("%x ", uintptr(unsafe.Pointer(&mem[0])))
			var line string
			for _, l := range strings.Split(string(maps), "\n") {
				if strings.HasPrefix(l, want) {
					line = l
				}
			}
			if !strings.Contains(line, " bind:0") || !strings.Contains(line, " N0=16") {
				t.Fatalf("numa_maps line for the buffer %q: want bind:0 and 16 pages on N0", line)
			}
		})
	}
	c, err := fs.Open(context.Background(), t.TempDir(), fs.WithBackend("posix"), fs.WithNUMA(999))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.NewBuffer(4096, fs.BufferOpts{}); !errors.Is(err, fs.ErrInvalid) || !strings.Contains(err.Error(), "node 999") {
		t.Fatalf("NewBuffer on node 999: %v, want ErrInvalid naming the node", err)
	}
	if _, err := fs.Open(context.Background(), t.TempDir(), fs.WithNUMA(-2)); !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("WithNUMA(-2): %v, want ErrInvalid", err)
	}
}
