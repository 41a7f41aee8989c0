package ucx

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/sock"
	"github.com/fireflyer-go/fireflyer/internal/anchor"
)

// pair dials two ranks in this process (each its own UCP context and
// worker) over a Unix-socket bootstrap with UCX_TLS=tls, registers size
// bytes on each and returns them; the cleanup closes both.
func pair(tb testing.TB, tls string, size int) ([2]*Transport, [2]*ep.Region) {
	tb.Helper()
	return pairWith(tb, tls, size, false)
}

// pairWith is pair, with Options.NoMappedPuts set to noMapped.
func pairWith(tb testing.TB, tls string, size int, noMapped bool) ([2]*Transport, [2]*ep.Region) {
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
			ts[r], errs[r] = Dial(ctx, Options{Boot: sock.Options{Network: "unix", Rank: r, WorldSize: 2, MasterAddr: master}, Config: map[string]string{"TLS": tls}, NoMappedPuts: noMapped})
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

// BenchmarkPutCall is the cost of one Put of 64 bytes from rank 0 to
// rank 1 (1,024 puts, then one Signal, per 1,024 ops), over shared memory
// with puts into the mapped region and with Options.NoMappedPuts: the
// per-call overhead that DeepEP's per-token puts pay.
func BenchmarkPutCall(b *testing.B) {
	for _, noMapped := range []bool{false, true} {
		name := "mapped"
		if noMapped {
			name = "ucp_put_nbx"
		}
		b.Run(name, func(b *testing.B) {
			ts, regs := pairWith(b, tlsSets[0], 64+64*1024, noMapped)
			src := make([]byte, 64)
			ctx := context.Background()
			signals := int64(0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := ts[0].Put(ctx, 1, 64+64*(i%1024), src); err != nil {
					b.Fatal(err)
				}
				if i%1024 == 1023 || i == b.N-1 {
					if err := ts[0].Signal(ctx, 1, 0, 1); err != nil {
						b.Fatal(err)
					}
					signals++
				}
			}
			if _, err := regs[1].Wait(ctx, 0, signals); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// putWindow is how many puts BenchmarkPutProcesses issues between two
// signals (each signal flushes the endpoint).
const putWindow = 64

// putBandwidthRank is one rank of BenchmarkPutProcesses ("putbw:SIZE:COUNT"):
// rank 0 puts COUNT messages of SIZE bytes to the same place of rank 1's
// region (as ucx_perftest -t ucp_put_bw does), with a Signal after every
// putWindow puts and at the end, and prints the bandwidth in bytes per
// second from the first put until rank 1 has seen the last signal.
func putBandwidthRank(ctx context.Context, boot sock.Options, arg string) error {
	var size, count int
	if _, err := fmt.Sscanf(arg, "%d:%d", &size, &count); err != nil || size < 1 || count < 1 {
		return fmt.Errorf("bad putbw spec %q", arg)
	}
	tr, err := Dial(ctx, Options{Boot: boot})
	if err != nil {
		return err
	}
	defer tr.Close()
	reg, err := tr.Register(ctx, 64+size)
	if err != nil {
		return err
	}
	src := make([]byte, size)
	for i := range src {
		src[i] = byte(i)
	}
	signals := int64((count + putWindow - 1) / putWindow)
	round := func() error {
		if tr.Rank() == 1 {
			return nil
		}
		for i := 0; i < count; i++ {
			if err := tr.Put(ctx, 1, 64, src); err != nil {
				return err
			}
			if (i+1)%putWindow == 0 || i == count-1 {
				if err := tr.Signal(ctx, 1, 0, 1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// A warm-up round, then the timed one; rank 1 acknowledges each with a
	// signal back once its counter shows every signal of the round.
	var elapsed time.Duration
	for it := int64(1); it <= 2; it++ {
		if err := tr.Barrier(ctx); err != nil {
			return err
		}
		start := time.Now()
		if err := round(); err != nil {
			return err
		}
		if tr.Rank() == 1 {
			if _, err := reg.Wait(ctx, 0, it*signals); err != nil {
				return err
			}
			if err := tr.Signal(ctx, 0, 8, 1); err != nil {
				return err
			}
		} else if _, err := reg.Wait(ctx, 8, it); err != nil {
			return err
		}
		elapsed = time.Since(start)
	}
	if tr.Rank() == 0 {
		fmt.Printf("%.0f\n", float64(size)*float64(count)/elapsed.Seconds())
	}
	return tr.Barrier(ctx)
}

// BenchmarkPutProcesses measures Put bandwidth between two rank processes
// the way `ucx_perftest -t ucp_put_bw -s SIZE` does (scripts/ucx-bench.sh
// runs both with the same UCX_TLS and size, in the same run): messages of
// 7,392 bytes (one FP8 token row of hidden 7168 with its scales), 1 MiB
// and 16 MiB, over shared memory and TCP. It reports MiB/s (UCX's MB) as
// measured inside rank 0, not counting the processes' start.
func BenchmarkPutProcesses(b *testing.B) {
	needUCX(b)
	for _, tls := range tlsSets {
		for _, size := range []int{7392, 1 << 20, 16 << 20} {
			count := max(256, min(2000000, (8<<30)/size))
			if tls == "tcp,self" {
				count = max(16, count/16)
			}
			b.Run(fmt.Sprintf("%s/%d", tls, size), func(b *testing.B) {
				var sum float64
				for i := 0; i < b.N; i++ {
					exits, err := sock.Launch(context.Background(), sock.LaunchConfig{
						Network: "tcp", WorldSize: 2, Timeout: 5 * time.Minute,
						Command: func(int) *exec.Cmd { return exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$") },
						Env:     []string{envChild + "=putbw:" + fmt.Sprint(size, ":", count), "UCX_TLS=" + tls},
					})
					if err != nil {
						b.Fatal(err)
					}
					bw, err := strconv.ParseFloat(strings.TrimSpace(string(exits[0].Stdout)), 64)
					if err != nil {
						b.Fatalf("rank 0 printed %q", exits[0].Stdout)
					}
					sum += bw
				}
				b.ReportMetric(sum/float64(b.N)/(1<<20), "MiB/s")
			})
		}
	}
}

// BenchmarkCopyAnchor is the bandwidth anchor of the dispatch/combine
// comparison: copy() of 128 MiB split over GOMAXPROCS goroutines
// (internal/anchor.Memcpy), in MiB/s of bytes copied.
func BenchmarkCopyAnchor(b *testing.B) {
	const n = 128 << 20
	f := anchor.Memcpy(n)
	f()
	b.SetBytes(n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f()
	}
}
