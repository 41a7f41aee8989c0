package ucx_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fireflyer-go/fireflyer/ep/sock"
	"github.com/fireflyer-go/fireflyer/ep/ucx"
)

// Two ranks (here goroutines of one process; normally one process each,
// started by sock.Launch or a cluster's launcher) join over a Unix-socket
// bootstrap, register 4 KiB each and rank 0 puts a message into rank 1's
// region over UCX shared memory, then signals it.
func Example() {
	dir, _ := os.MkdirTemp("", "ucx-example")
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for rank := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t, err := ucx.Dial(ctx, ucx.Options{
				Boot:   sock.Options{Network: "unix", Rank: rank, WorldSize: 2, MasterAddr: filepath.Join(dir, "rendezvous.sock")},
				Config: map[string]string{"TLS": "posix,cma,self"}, // as UCX_TLS=posix,cma,self
			})
			if err != nil {
				fmt.Println(err)
				return
			}
			defer t.Close()
			reg, err := t.Register(ctx, 4096)
			if err != nil {
				fmt.Println(err)
				return
			}
			if rank == 0 {
				msg := []byte("hello over UCX")
				err := t.Put(ctx, 1, 64, msg)
				if err == nil {
					err = t.Signal(ctx, 1, 0, int64(len(msg))) // applied after the put
				}
				if err != nil {
					fmt.Println(err)
				}
			} else {
				n, err := reg.Wait(ctx, 0, 1)
				if err == nil {
					fmt.Printf("rank 1 got %q\n", reg.Bytes()[64:64+n])
				}
			}
			_ = t.Barrier(ctx)
		}()
	}
	wg.Wait()
	// Output: rank 1 got "hello over UCX"
}
