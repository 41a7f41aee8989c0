package ep_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// TestComputeLayout compares the layout with a brute-force count.
func TestComputeLayout(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, ranks := range []int{1, 2, 3, 4, 8, 9, 16} {
		for _, k := range []int{1, 4, 9} {
			e := ranks * 4
			n := 50
			idx := make([]int32, n*k)
			for i := range idx {
				idx[i] = int32(r.IntN(e+3)) - 3 // −3..−1 become −1 below
				if idx[i] < 0 {
					idx[i] = -1
				}
			}
			l, err := ep.ComputeLayout(ep.TopK{K: k, Idx: idx}, n, ranks, e)
			if err != nil {
				t.Fatal(err)
			}
			el := e / ranks
			for rk := 0; rk < ranks; rk++ {
				cnt := 0
				for tok := 0; tok < n; tok++ {
					in := false
					for j := 0; j < k; j++ {
						in = in || idx[tok*k+j] >= 0 && int(idx[tok*k+j])/el == rk
					}
					if in != l.InRank[tok*ranks+rk] {
						t.Fatalf("R=%d K=%d: InRank[%d][%d] = %v", ranks, k, tok, rk, !in)
					}
					if in {
						cnt++
					}
				}
				if int(l.PerRank[rk]) != cnt {
					t.Fatalf("R=%d K=%d: PerRank[%d] = %d, want %d", ranks, k, rk, l.PerRank[rk], cnt)
				}
			}
			for node := range l.PerNode {
				cnt := 0
				for tok := 0; tok < n; tok++ {
					in := false
					for rk := node * 8; rk < min(ranks, node*8+8); rk++ {
						in = in || l.InRank[tok*ranks+rk]
					}
					if in {
						cnt++
					}
				}
				if int(l.PerNode[node]) != cnt {
					t.Fatalf("R=%d: PerNode[%d] = %d, want %d", ranks, node, l.PerNode[node], cnt)
				}
			}
			for ex := 0; ex < e; ex++ {
				cnt := 0
				for _, v := range idx {
					if int(v) == ex {
						cnt++
					}
				}
				if int(l.PerExpert[ex]) != cnt {
					t.Fatalf("PerExpert[%d] = %d, want %d", ex, l.PerExpert[ex], cnt)
				}
			}
		}
	}
}

// TestLowLatencySizeHint checks upstream's formula on the brief's figures:
// about 1.78 GiB for M=128, H=7168, E=256 and about 2.0 GiB for E=288.
func TestLowLatencySizeHint(t *testing.T) {
	if got := ep.LowLatencySizeHint(128, 7168, 8, 256); got != 1908410368 {
		t.Errorf("hint(128, 7168, 8, 256) = %d, want 1908410368 (1.78 GiB)", got)
	}
	if got, want := ep.LowLatencySizeHint(128, 7168, 16, 256), ep.LowLatencySizeHint(128, 7168, 8, 256); got != want {
		t.Errorf("hint depends on the rank count: %d vs %d", got, want)
	}
	if got := float64(ep.LowLatencySizeHint(128, 7168, 8, 288)) / (1 << 30); got < 1.99 || got > 2.01 {
		t.Errorf("hint(E=288) = %.3f GiB, want about 2.0", got)
	}
}

// TestRegionBounds checks that puts and signals outside a region fail
// without writing.
func TestRegionBounds(t *testing.T) {
	err := inproc.Run(context.Background(), 2, func(ctx context.Context, tr ep.Transport) error {
		reg, err := tr.Register(ctx, 64)
		if err != nil {
			return err
		}
		if tr.Rank() == 0 {
			for _, c := range []struct{ off, n int }{{-1, 1}, {60, 8}, {64, 1}, {0, 65}} {
				if err := tr.Put(ctx, 1, c.off, make([]byte, c.n)); !errors.Is(err, ep.ErrRange) {
					t.Errorf("Put(off=%d, n=%d) = %v, want ErrRange", c.off, c.n, err)
				}
			}
			for _, off := range []int{-8, 4, 64} {
				if err := tr.Signal(ctx, 1, off, 1); !errors.Is(err, ep.ErrRange) {
					t.Errorf("Signal(off=%d) = %v, want ErrRange", off, err)
				}
			}
			if err := tr.Put(ctx, 2, 0, []byte{1}); !errors.Is(err, ep.ErrRange) {
				t.Errorf("Put to rank 2 of 2 = %v, want ErrRange", err)
			}
		}
		if err := tr.Barrier(ctx); err != nil {
			return err
		}
		for i, v := range reg.Bytes() {
			if v != 0 {
				t.Errorf("rank %d byte %d written: %d", tr.Rank(), i, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDeadline checks that a rank whose peer never joins a collective
// fails within its deadline, and that the Buffer then reports ErrBroken.
func TestDeadline(t *testing.T) {
	start := time.Now()
	err := inproc.RunBuffers(context.Background(), 3, ep.Options{NormalBytes: 1 << 16, Timeout: 200 * time.Millisecond}, func(ctx context.Context, b *ep.Buffer) error {
		if b.Rank() == 2 {
			return nil // never dispatches
		}
		x := ep.Tokens{N: 1, Hidden: 8, BF16: make([]tensor.BF16, 8)}
		_, err := b.Dispatch(context.Background(), x, &ep.TopK{K: 1, Idx: []int32{0}}, ep.DispatchOptions{NumExperts: 3})
		if !errors.Is(err, ep.ErrTransport) {
			t.Errorf("rank %d: %v, want ErrTransport after the deadline", b.Rank(), err)
		}
		_, err = b.Dispatch(context.Background(), x, &ep.TopK{K: 1, Idx: []int32{0}}, ep.DispatchOptions{NumExperts: 3})
		if !errors.Is(err, ep.ErrBroken) {
			t.Errorf("rank %d: second call %v, want ErrBroken", b.Rank(), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// FuzzValidation feeds arbitrary shapes and expert ids to rank 0 of a
// 2-rank group while rank 1 passes valid input: no panic, no hang, and if
// either rank fails, both do.
func FuzzValidation(f *testing.F) {
	f.Add(uint8(4), uint8(16), uint8(2), uint8(4), uint8(0), []byte{0, 1, 2, 3, 255, 0, 1, 2})
	f.Add(uint8(4), uint8(16), uint8(2), uint8(4), uint8(1), []byte{9})
	f.Add(uint8(0), uint8(0), uint8(0), uint8(0), uint8(2), []byte{})
	f.Add(uint8(3), uint8(8), uint8(1), uint8(6), uint8(3), []byte{0, 1, 5, 250})
	f.Fuzz(func(t *testing.T, n, hidden, k, experts, mode uint8, ids []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errs := make([]error, 2)
		opts := ep.Options{NormalBytes: 1 << 16, MaxExperts: 256, LowLatency: &ep.LowLatencyConfig{MaxTokensPerRank: 4, Hidden: 16, NumExperts: 4, MaxTopK: 2}}
		err := inproc.RunBuffers(ctx, 2, opts, func(ctx context.Context, b *ep.Buffer) error {
			N, H, K, E := 4, 16, 2, 4
			idx := []int32{0, 1, 2, 3, -1, 0, 1, -1}
			if b.Rank() == 0 {
				N, H, K, E = int(n)%9, int(hidden)%40, int(k)%4, int(experts)%10
				idx = make([]int32, len(ids))
				for i, v := range ids {
					idx[i] = int32(int8(v))
				}
			}
			x := ep.Tokens{N: N, Hidden: H, BF16: make([]tensor.BF16, max(0, N*H-int(mode&1)))}
			tk := ep.TopK{K: K, Idx: idx, Weights: make([]float32, len(idx))}
			switch mode % 3 {
			case 0:
				_, errs[b.Rank()] = b.Dispatch(ctx, x, &tk, ep.DispatchOptions{NumExperts: E})
			case 1:
				_, errs[b.Rank()] = b.LowLatencyDispatch(ctx, x, tk, ep.LowLatencyOptions{})
			default:
				if b.Rank() == 0 { // local only: must not panic
					_, _ = ep.ComputeLayout(tk, N, 2, E)
					_, _ = b.Layout(tk, E)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if (errs[0] == nil) != (errs[1] == nil) {
			t.Fatalf("ranks disagree: rank 0 %v, rank 1 %v", errs[0], errs[1])
		}
		for _, e := range errs {
			if e != nil && (errors.Is(e, ep.ErrTransport) || errors.Is(e, ep.ErrBroken)) {
				t.Fatalf("validation error surfaced as a transport failure: %v", e)
			}
		}
	})
}

// TestClosed checks that calls after Close fail with ErrClosed and that a
// Buffer without low-latency mode has no combine buffer.
func TestClosed(t *testing.T) {
	err := inproc.Run(context.Background(), 1, func(ctx context.Context, tr ep.Transport) error {
		b, err := ep.New(ctx, tr, ep.Options{NormalBytes: 1 << 12})
		if err != nil {
			return err
		}
		if b.NextCombineBuffer() != nil {
			t.Error("NextCombineBuffer without low-latency mode is not nil")
		}
		if _, err := b.LowLatencyDispatch(ctx, ep.Tokens{}, ep.TopK{}, ep.LowLatencyOptions{}); !errors.Is(err, ep.ErrConfig) {
			t.Errorf("LowLatencyDispatch without low-latency mode: %v, want ErrConfig", err)
		}
		b.Close()
		x := ep.Tokens{N: 1, Hidden: 8, BF16: make([]tensor.BF16, 8)}
		if _, err := b.Dispatch(ctx, x, &ep.TopK{K: 1, Idx: []int32{0}}, ep.DispatchOptions{NumExperts: 1}); !errors.Is(err, ep.ErrClosed) {
			t.Errorf("Dispatch after Close: %v, want ErrClosed", err)
		}
		if _, err := b.DispatchAsync(ctx, x, nil, ep.DispatchOptions{}).Wait(ctx); !errors.Is(err, ep.ErrClosed) {
			t.Errorf("DispatchAsync after Close: %v, want ErrClosed", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOpenTransportCancelled: a ctx that is already done opens nothing, for
// an in-process transport too, and says so with ctx's error.
func TestOpenTransportCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ts, err := ep.OpenTransport(ctx, "inproc", ep.TransportConfig{WorldSize: 2})
	if err == nil || !errors.Is(err, context.Canceled) || !errors.Is(err, ep.ErrTransport) || ts != nil {
		t.Fatalf("OpenTransport(cancelled) = %d transports, %v; want ErrTransport and context.Canceled", len(ts), err)
	}
	// A bad configuration is still reported as such.
	if _, err := ep.OpenTransport(ctx, "inproc", ep.TransportConfig{WorldSize: 0}); !errors.Is(err, ep.ErrConfig) {
		t.Fatalf("bad config with cancelled ctx: %v, want ErrConfig", err)
	}
	ts, err = ep.OpenTransport(context.Background(), "inproc", ep.TransportConfig{WorldSize: 2})
	if err != nil || len(ts) != 2 {
		t.Fatalf("OpenTransport = %d, %v", len(ts), err)
	}
	for _, tr := range ts {
		tr.Close()
	}
}
