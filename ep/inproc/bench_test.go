package inproc_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// copier measures Go copy bandwidth: GOMAXPROCS goroutines each copy
// 14,336-byte rows (one BF16 token of hidden 7168) between two 128 MiB
// slabs, larger than the last-level cache, as the ranks' buffers are.
type copier struct{ srcs, dsts [][]byte }

func newCopier() *copier {
	p := runtime.GOMAXPROCS(0)
	c := &copier{srcs: make([][]byte, p), dsts: make([][]byte, p)}
	for i := range c.srcs {
		c.srcs[i], c.dsts[i] = make([]byte, 128<<20), make([]byte, 128<<20)
		for j := range c.srcs[i] {
			c.srcs[i][j] = byte(j)
		}
		copy(c.dsts[i], c.srcs[i]) // fault the pages in
	}
	return c
}

// run copies total bytes and returns the time taken.
func (c *copier) run(total int) time.Duration {
	const row = 14336
	p := len(c.srcs)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < p; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src, dst := c.srcs[i], c.dsts[i]
			for done := 0; done < total/p; {
				for off := 0; off+row <= len(src) && done < total/p; off += row {
					copy(dst[off:off+row], src[off:off+row])
					done += row
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// runRanks runs body on len(ranks) in-process ranks, each with an ep.Buffer
// made with opts (closed after) and its own entry of ranks; a rank's error
// fails b.
func runRanks(b *testing.B, ranks []benchRank, opts ep.Options, body func(ctx context.Context, t ep.Transport, buf *ep.Buffer, in *benchRank) error) {
	err := inproc.Run(context.Background(), len(ranks), func(ctx context.Context, t ep.Transport) error {
		buf, err := ep.New(ctx, t, opts)
		if err != nil {
			return err
		}
		defer buf.Close()
		return body(ctx, t, buf, &ranks[t.Rank()])
	})
	if err != nil {
		b.Fatal(err)
	}
}

// randomRank draws one rank's input from rng: n BF16 tokens of hidden h
// ~ N(0, std²) and a top-k routing of them over e experts with weights
// uniform in [0, 1) (the routing first, then the weights, then the tokens).
func randomRank(rng *rand.Rand, n, h, k, e int, std float64) benchRank {
	idx := testutil.RandomTopK(rng, n, k, e)
	w := make([]float32, n*k)
	for i := range w {
		w[i] = rng.Float32()
	}
	xb := make([]tensor.BF16, n*h)
	for i := range xb {
		xb[i] = tensor.BF16FromFloat32(float32(rng.NormFloat64() * std))
	}
	return benchRank{x: ep.Tokens{N: n, Hidden: h, BF16: xb}, topk: ep.TopK{K: k, Idx: idx, Weights: w}}
}

type benchRank struct {
	x    ep.Tokens
	topk ep.TopK
	y    []tensor.BF16 // combine input for FP8 runs
}

// BenchmarkNormal runs DeepEP's normal-mode shape on 8 in-process ranks:
// 4096 tokens per rank, hidden 7168, top-8 of 256 experts (512 tokens with
// -short). It reports dispatch, combine and round-trip bandwidth by
// upstream's definition (BF16 bytes received, own tokens included; FP8
// dispatch × (1+4/128)/2) summed over ranks, and each as a ratio to Go copy
// bandwidth measured in the same run, interleaved with the iterations.
func BenchmarkNormal(b *testing.B) {
	for _, fp8 := range []bool{false, true} {
		name := "bf16"
		if fp8 {
			name = "fp8"
		}
		b.Run(name, func(b *testing.B) { benchNormal(b, fp8) })
	}
}

func benchNormal(b *testing.B, fp8 bool) {
	const R, H, K, E = 8, 7168, 8, 256
	N := 4096
	if testing.Short() {
		N = 512
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ranks := make([]benchRank, R)
	recv := make([]int, R)
	maxRows := 0
	for r := range ranks {
		ranks[r] = randomRank(rng, N, H, K, E, 1)
		if fp8 {
			m, err := tensor.QuantizePerTokenBF16(ranks[r].x.BF16, N, H, tensor.QuantOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if ranks[r].x, err = ep.TokensFromFP8(m); err != nil {
				b.Fatal(err)
			}
		}
		l, err := ep.ComputeLayout(ranks[r].topk, N, R, E)
		if err != nil {
			b.Fatal(err)
		}
		sent := 0
		for d := 0; d < R; d++ {
			recv[d] += int(l.PerRank[d])
			sent += int(l.PerRank[d])
		}
		maxRows = max(maxRows, sent)
	}
	totalRecv := 0
	for _, v := range recv {
		maxRows = max(maxRows, v)
		totalRecv += v
	}
	if fp8 {
		for r := range ranks {
			ranks[r].y = make([]tensor.BF16, recv[r]*H)
		}
	}
	bytesComb := float64(totalRecv) * float64(2*H)
	bytesDisp := bytesComb
	if fp8 {
		bytesDisp *= (1 + 4.0/128) / 2
	}
	cp := newCopier()

	opts := ep.Options{NormalBytes: ep.NormalSizeHint(maxRows, H, K), MaxExperts: E}
	var tDisp, tComb, tCopy time.Duration
	b.ResetTimer()
	runRanks(b, ranks, opts, func(ctx context.Context, t ep.Transport, buf *ep.Buffer, in *benchRank) error {
		me := t.Rank()
		out := make([]tensor.BF16, N*H) // reused combine output
		for i := -1; i < b.N; i++ {     // iteration −1 warms up
			// The anchor: the same bytes through copy, interleaved with the
			// runs so that both see the same load on a shared machine.
			if me == 0 && i >= 0 {
				tCopy += cp.run(int(bytesComb))
			}
			if err := t.Barrier(ctx); err != nil {
				return err
			}
			t0 := time.Now()
			res, err := buf.Dispatch(ctx, in.x, &in.topk, ep.DispatchOptions{NumExperts: E})
			if err != nil {
				return err
			}
			t1 := time.Now()
			y := res.X.BF16
			if fp8 {
				y = in.y
			}
			if _, err := buf.Combine(ctx, y, res.Handle, ep.CombineOptions{Weights: res.Weights, TopK: K, Out: out}); err != nil {
				return err
			}
			if err := t.Barrier(ctx); err != nil {
				return err
			}
			if me == 0 && i >= 0 {
				tDisp += t1.Sub(t0)
				tComb += time.Since(t1) // until every rank has combined
			}
		}
		return nil
	})
	n := float64(b.N)
	copyBW := bytesComb * n / tCopy.Seconds()
	dispBW := bytesDisp * n / tDisp.Seconds()
	combBW := bytesComb * n / tComb.Seconds()
	rtBW := (bytesDisp + bytesComb) * n / (tDisp + tComb).Seconds()
	b.ReportMetric(dispBW/1e9, "dispatch-GB/s")
	b.ReportMetric(combBW/1e9, "combine-GB/s")
	b.ReportMetric(rtBW/1e9, "roundtrip-GB/s")
	b.ReportMetric(copyBW/1e9, "copy-GB/s")
	b.ReportMetric(dispBW/copyBW, "dispatch/copy")
	b.ReportMetric(combBW/copyBW, "combine/copy")
	b.ReportMetric(rtBW/copyBW, "roundtrip/copy")
}

// BenchmarkLowLatency runs DeepEP's low-latency shape on 8 in-process ranks:
// 128 tokens per rank, hidden 7168, top-8 of 288 experts, FP8 (or BF16)
// dispatch and zero-copy BF16 combine. It reports µs per dispatch and per combine and
// GB/s by upstream's definition (per selection: H + 4H/128 + 16 bytes for
// FP8 dispatch, 2H for BF16 dispatch and combine), summed over ranks.
func BenchmarkLowLatency(b *testing.B) {
	for _, fp8 := range []bool{true, false} {
		name := "fp8"
		if !fp8 {
			name = "bf16"
		}
		b.Run(name, func(b *testing.B) { benchLowLatency(b, fp8) })
	}
}

func benchLowLatency(b *testing.B, fp8 bool) {
	const R, M, H, K, E = 8, 128, 7168, 8, 288
	rng := rand.New(rand.NewPCG(5, 6))
	ranks := make([]benchRank, R)
	sel := 0
	for r := range ranks {
		ranks[r] = randomRank(rng, M, H, K, E, 0.1)
		sel += M * K
	}
	dispMsg := 2 * H
	if fp8 {
		dispMsg = H + 4*H/128 + 16
	}
	opts := ep.Options{LowLatency: &ep.LowLatencyConfig{MaxTokensPerRank: M, Hidden: H, NumExperts: E, MaxTopK: K}}
	var tDisp, tComb time.Duration
	b.ResetTimer()
	runRanks(b, ranks, opts, func(ctx context.Context, t ep.Transport, buf *ep.Buffer, in *benchRank) error {
		me := t.Rank()
		out := make([]tensor.BF16, M*H)
		for i := -2; i < b.N; i++ {
			if err := t.Barrier(ctx); err != nil {
				return err
			}
			t0 := time.Now()
			res, err := buf.LowLatencyDispatch(ctx, in.x, in.topk, ep.LowLatencyOptions{UseFP8: fp8})
			if err != nil {
				return err
			}
			if err := t.Barrier(ctx); err != nil {
				return err
			}
			t1 := time.Now()
			// Zero-copy: the experts would write into NextCombineBuffer, a
			// [E/R][R·M][H] buffer of which only the valid rows are touched.
			if _, err := buf.LowLatencyCombine(ctx, nil, in.topk, res.Handle, ep.LowLatencyCombineOptions{ZeroCopy: true, Out: out}); err != nil {
				return err
			}
			if err := t.Barrier(ctx); err != nil {
				return err
			}
			if me == 0 && i >= 0 {
				tDisp += t1.Sub(t0)
				tComb += time.Since(t1)
			}
		}
		return nil
	})
	n := float64(b.N)
	b.ReportMetric(tDisp.Seconds()/n*1e6, "dispatch-µs")
	b.ReportMetric(tComb.Seconds()/n*1e6, "combine-µs")
	b.ReportMetric(float64(sel*dispMsg)*n/tDisp.Seconds()/1e9, "dispatch-GB/s")
	b.ReportMetric(float64(sel*2*H)*n/tComb.Seconds()/1e9, "combine-GB/s")
}
