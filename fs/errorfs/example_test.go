package errorfs_test

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/errorfs"
)

// Wrap the mem backend and fail the read with tag 1 with EIO; each fault
// surfaces in its own completion.
func ExampleWrap() {
	mem, _ := fs.NewBackend("mem", fs.BackendOpts{})
	efs := errorfs.Wrap(mem, errorfs.Options{})
	c, _ := fs.Open(context.Background(), "", fs.WithBackendValue(efs))
	defer c.Close()
	f, _ := c.OpenFile("x", os.O_RDWR|os.O_CREATE, 0o644)
	f.WriteAt(make([]byte, 8192), 0)
	efs.SetRules(errorfs.Rule{
		Op:     errorfs.Reads,
		Match:  func(i errorfs.Info) bool { return i.Tag == 1 },
		Inject: errorfs.Injection{Err: syscall.EIO},
	})
	buf, _ := c.NewBuffer(8192, fs.BufferOpts{})
	r, _ := c.NewRing(fs.RingOpts{Entries: 2, Op: fs.Read})
	for i := range 2 {
		reg, _ := buf.Region(i*4096, 4096)
		r.Prep(fs.Req{File: f, Off: int64(i) * 4096, Buf: reg, Tag: uint64(i)})
	}
	r.Submit()
	out := make([]fs.Completion, 2)
	n, _ := r.Wait(context.Background(), out, 2)
	res := map[uint64]string{}
	for _, cp := range out[:n] {
		res[cp.Tag] = fmt.Sprintf("N=%d err=%v", cp.N, cp.Err)
	}
	fmt.Println(res[0])
	fmt.Println(res[1])
	fmt.Println(c.Backend(), efs.Counts().Errors)
	// Output:
	// N=4096 err=<nil>
	// N=0 err=input/output error
	// errorfs(mem) 1
}
