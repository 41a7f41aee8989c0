package ucx

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/sock"
)

// pair dials two ranks in this process (each its own UCP context and
// worker) over a Unix-socket bootstrap with UCX_TLS=tls, registers size
// bytes on each and returns them; the cleanup closes both.
func pair(tb testing.TB, tls string, size int) ([2]*Transport, [2]*ep.Region) {
	tb.Helper()
	needUCX(tb)
	master := filepath.Join(tb.TempDir(), "m.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ts [2]*Transport
	var regs [2]*ep.Region
	var errs [2]error
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts[r], errs[r] = Dial(ctx, Options{Boot: sock.Options{Network: "unix", Rank: r, WorldSize: 2, MasterAddr: master}, Config: map[string]string{"TLS": tls}})
			if errs[r] == nil {
				regs[r], errs[r] = ts[r].Register(ctx, size)
			}
		}()
	}
	wg.Wait()
	tb.Cleanup(func() {
		for _, t := range ts {
			if t != nil {
				t.Close()
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return ts, regs
}

// BenchmarkPut moves one rank's share of a DeepEP-size dispatch (rows of
// 7,168 FP8 bytes plus 224 bytes of scales, as 2,048 puts of one row
// each) from rank 0 to rank 1 followed by one Signal, and the same bytes
// as one Put, over shared memory and TCP.
func BenchmarkPut(b *testing.B) {
	const rows, row = 2048, 7168 + 224
	for _, tls := range tlsSets {
		for _, one := range []bool{false, true} {
			name := tls + "/rows"
			if one {
				name = tls + "/one"
			}
			b.Run(name, func(b *testing.B) {
				ts, regs := pair(b, tls, 64+rows*row)
				src := make([]byte, rows*row)
				for i := range src {
					src[i] = byte(i)
				}
				ctx := context.Background()
				b.SetBytes(int64(len(src)))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if one {
						if err := ts[0].Put(ctx, 1, 64, src); err != nil {
							b.Fatal(err)
						}
					} else {
						for r := 0; r < rows; r++ {
							if err := ts[0].Put(ctx, 1, 64+r*row, src[r*row:(r+1)*row]); err != nil {
								b.Fatal(err)
							}
						}
					}
					if err := ts[0].Signal(ctx, 1, 0, 1); err != nil {
						b.Fatal(err)
					}
					if _, err := regs[1].Wait(ctx, 0, int64(i+1)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
