package sock_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/sock"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Two ranks over Unix-domain sockets (goroutines here; normally two
// processes started with RANK, WORLD_SIZE and MASTER_ADDR, read by
// sock.OptionsFromEnv) run a normal dispatch of one token each to both ranks.
func Example() {
	dir, _ := os.MkdirTemp("", "ep-example")
	defer os.RemoveAll(dir)
	master := filepath.Join(dir, "master.sock")
	recv := make([]int, 2)
	var wg sync.WaitGroup
	for rank := 0; rank < 2; rank++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			t, err := sock.Dial(ctx, sock.Options{Network: "unix", Rank: rank, WorldSize: 2, MasterAddr: master, Secret: []byte("s")})
			if err != nil {
				fmt.Println(err)
				return
			}
			defer t.Close()
			b, err := ep.New(ctx, t, ep.Options{NormalBytes: ep.NormalSizeHint(2, 8, 2)})
			if err != nil {
				fmt.Println(err)
				return
			}
			defer b.Close()
			x := ep.Tokens{N: 1, Hidden: 8, BF16: make([]tensor.BF16, 8)}
			res, err := b.Dispatch(ctx, x, &ep.TopK{K: 2, Idx: []int32{0, 1}}, ep.DispatchOptions{NumExperts: 2})
			if err != nil {
				fmt.Println(err)
				return
			}
			recv[rank] = res.Handle.NumRecv
		}()
	}
	wg.Wait()
	fmt.Println("tokens received per rank:", recv)
	// Output: tokens received per rank: [2 2]
}
