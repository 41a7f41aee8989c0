package sock

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/internal/testutil/nettest"
)

// BenchmarkTransport moves one rank's share of a DeepEP-size dispatch
// (2,700 token rows of 14,336 bytes, about 39 MB) from rank 0 to rank 1 as
// one Put of the rows plus a Signal, and the same rows over a raw socket
// (writev of the rows, io.ReadFull at the other end) between the same
// endpoints, interleaved in one run. It reports both bandwidths and their
// ratio.
func BenchmarkTransport(b *testing.B) {
	for _, network := range []string{"tcp", "unix"} {
		b.Run(network, func(b *testing.B) { benchTransport(b, network) })
	}
}

func benchTransport(b *testing.B, network string) {
	const rows, row = 2700, 14336
	total := rows * row
	src := make([]byte, total)
	for i := range src {
		src[i] = byte(i)
	}
	bufs := make([][]byte, rows)
	for i := range bufs {
		bufs[i] = src[i*row : (i+1)*row]
	}
	addr, port := masterFor(b, network)
	ctx := context.Background()
	ts := make([]*Transport, 2)
	regs := make([]*ep.Region, 2)
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t, err := Dial(ctx, Options{Network: network, Rank: r, WorldSize: 2, MasterAddr: addr, MasterPort: port})
			if err != nil {
				b.Error(err)
				return
			}
			ts[r] = t
			regs[r], err = t.Register(ctx, total+64)
			if err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	defer ts[0].Close()
	defer ts[1].Close()

	// The raw stream between the same two endpoints (same process pair).
	wc, done := nettest.RawStream(b, network, total)

	var tRaw, tPut time.Duration
	b.ResetTimer()
	for i := -1; i < b.N; i++ {
		t0 := time.Now()
		nb := net.Buffers(append([][]byte(nil), bufs...))
		if _, err := nb.WriteTo(wc); err != nil {
			b.Fatal(err)
		}
		<-done
		t1 := time.Now()
		if err := ts[0].Put(ctx, 1, 64, bufs...); err != nil {
			b.Fatal(err)
		}
		if err := ts[0].Signal(ctx, 1, 0, 1); err != nil {
			b.Fatal(err)
		}
		if _, err := regs[1].Wait(ctx, 0, int64(i+2)); err != nil {
			b.Fatal(err)
		}
		if i >= 0 {
			tRaw += t1.Sub(t0)
			tPut += time.Since(t1)
		}
	}
	b.StopTimer()
	wc.Close()
	<-done
	n := float64(b.N)
	raw := float64(total) * n / tRaw.Seconds()
	put := float64(total) * n / tPut.Seconds()
	b.ReportMetric(raw/1e9, "raw-GB/s")
	b.ReportMetric(put/1e9, "transport-GB/s")
	b.ReportMetric(put/raw, "transport/raw")
}
