package p2p

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep/sock"
	"github.com/fireflyer-go/fireflyer/internal/testutil/nettest"
	"github.com/fireflyer-go/fireflyer/pipeline"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// sockPair returns a 2-rank p2p group over ep/sock in this process.
func sockPair(tb testing.TB, network string, opts Options) []*Transport {
	tb.Helper()
	o := sock.Options{Network: network, WorldSize: 2, Timeout: 20 * time.Second}
	if network == "unix" {
		o.MasterAddr = filepath.Join(tb.TempDir(), "master.sock")
	} else {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		o.MasterPort = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	out := make([]*Transport, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Go(func() {
			ro := o
			ro.Rank = r
			tr, err := sock.Dial(context.Background(), ro)
			if err != nil {
				errs[r] = err
				return
			}
			if out[r], errs[r] = New(context.Background(), tr, opts); errs[r] != nil {
				tr.Close()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() {
		var wg sync.WaitGroup
		for _, t := range out {
			wg.Go(func() { t.Close() })
		}
		wg.Wait()
	})
	return out
}

// BenchmarkThroughput sends activation-sized tensors ([rows, 4096] float32)
// from rank 0 to rank 1 through the p2p transport over ep/sock, interleaved
// in one run with the same bytes over a raw socket between the same
// process pair (one write, io.ReadFull into a reused buffer). It reports
// both bandwidths and p2p/raw. The -recycled variants hand each received
// tensor back with Transport.Recycle, as the raw stream reuses its buffer.
// The ring/ variants force the ring path (Options.NoMessages) that
// transports without ep.Messenger use.
func BenchmarkThroughput(b *testing.B) {
	for _, path := range []string{"msg", "ring"} {
		for _, network := range []string{"unix", "tcp"} {
			for _, rows := range []int{64, 512} {
				for _, recycle := range []bool{false, true} {
					name := fmt.Sprintf("%s/%s/%dx4096xF32", path, network, rows)
					if recycle {
						name += "-recycled"
					}
					b.Run(name, func(b *testing.B) { benchThroughput(b, network, rows, recycle, path == "ring") })
				}
			}
		}
	}
}

func benchThroughput(b *testing.B, network string, rows int, recycle, ring bool) {
	trs := sockPair(b, network, Options{NoMessages: ring})
	msg := f32([]int{rows, 4096}, 1)
	total := len(msg.Data)

	wc, done := nettest.RawStream(b, network, total)
	ctx := context.Background()
	var tRaw, tP2P time.Duration
	b.SetBytes(int64(total))
	b.ResetTimer()
	for i := -1; i < b.N; i++ {
		t0 := time.Now()
		if _, err := wc.Write(msg.Data); err != nil {
			b.Fatal(err)
		}
		<-done
		t1 := time.Now()
		tag := pipeline.Tag{Kind: pipeline.Activation, Micro: i + 1}
		errc := make(chan error, 1)
		go func() { errc <- trs[0].Send(ctx, 1, tag, msg) }()
		got, err := trs[1].Recv(ctx, 0, tag)
		if err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		if i >= 0 {
			tRaw += t1.Sub(t0)
			tP2P += time.Since(t1)
		}
		if len(got.Data) != total {
			b.Fatal("short message")
		}
		if recycle {
			trs[1].Recycle(got)
		}
	}
	b.StopTimer()
	wc.Close()
	<-done
	n := float64(b.N)
	raw := float64(total) * n / tRaw.Seconds()
	p := float64(total) * n / tP2P.Seconds()
	b.ReportMetric(raw/1e9, "raw-GB/s")
	b.ReportMetric(p/1e9, "p2p-GB/s")
	b.ReportMetric(p/raw, "p2p/raw")
}

// The same transfer over ep/sock, as a test: the bytes arrive intact in
// both directions at once, on the message path and through a ring much
// smaller than the message.
func TestSockRoundTrip(t *testing.T) {
	for _, network := range []string{"unix", "tcp", "unix-ring", "tcp-ring"} {
		t.Run(network, func(t *testing.T) {
			net, ring := strings.CutSuffix(network, "-ring")
			trs := sockPair(t, net, Options{Ring: 4096, NoMessages: ring})
			if (trs[0].msg != nil) == ring {
				t.Fatalf("message path = %v, want %v", trs[0].msg != nil, !ring)
			}
			ctx := context.Background()
			msgs := []*tensor.Tensor{f32([]int{100, 37}, 1), f32([]int{3, 100, 37}, 2)}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for r := range 2 {
				wg.Go(func() {
					tag := pipeline.Tag{Kind: pipeline.Gradient, Micro: 5}
					if errs[r] = trs[r].Send(ctx, 1-r, tag, msgs[r]); errs[r] != nil {
						return
					}
					got, err := trs[r].Recv(ctx, 1-r, tag)
					if err != nil {
						errs[r] = err
						return
					}
					want := msgs[1-r]
					if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) || string(got.Data) != string(want.Data) {
						errs[r] = fmt.Errorf("rank %d got %v, want %v", r, got.Shape, want.Shape)
					}
				})
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
