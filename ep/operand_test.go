package ep_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// TestLowLatencyFP8FeedsMaskedGEMM: the FP8 low-latency dispatch output,
// as LowLatencyResult.FP8 returns it, is the A of gemm.GroupedMaskedNT
// with maskedM = Count, without conversion, for float32 and UE8M0 scales.
func TestLowLatencyFP8FeedsMaskedGEMM(t *testing.T) {
	const ranks, experts, hidden, tokens, n = 2, 4, 256, 3, 16
	for _, ue8m0 := range []bool{false, true} {
		t.Run(fmt.Sprintf("ue8m0=%v", ue8m0), func(t *testing.T) {
			cfg := &ep.LowLatencyConfig{MaxTokensPerRank: tokens, Hidden: hidden, NumExperts: experts, MaxTopK: 2}
			err := inproc.RunBuffers(context.Background(), ranks, ep.Options{LowLatency: cfg}, func(ctx context.Context, b *ep.Buffer) error {
				r := testutil.RNG(uint64(10 + b.Rank()))
				xf := testutil.Normal(r, tokens*hidden, 0, 1)
				x := make([]tensor.BF16, len(xf))
				tensor.EncodeBF16(x, xf)
				topk := ep.TopK{K: 2, Idx: []int32{0, 3, 1, 2, 2, -1}, Weights: []float32{1, 1, 1, 1, 1, 0}}
				res, err := b.LowLatencyDispatch(ctx, ep.Tokens{N: tokens, Hidden: hidden, BF16: x}, topk,
					ep.LowLatencyOptions{UseFP8: true, RoundScale: ue8m0, UseUE8M0: ue8m0})
				if err != nil {
					return err
				}
				a, err := res.FP8()
				if err != nil {
					return err
				}
				local := experts / ranks
				if a.Groups != local || a.Rows != ranks*tokens || a.K != hidden || a.ScaleRows != 1 || (a.Format == tensor.ScaleUE8M0) != ue8m0 {
					return fmt.Errorf("operand layout %d×%d×%d, %d-row %v scales", a.Groups, a.Rows, a.K, a.ScaleRows, a.Format)
				}
				ws := make([]*tensor.FP8Matrix, local)
				for i := range ws {
					ws[i], _ = tensor.QuantizePerBlock(testutil.Normal(r, n*hidden, 0, 1), n, hidden, tensor.QuantOptions{})
				}
				w, err := tensor.Stack(ws...)
				if err != nil {
					return err
				}
				y := make([]float32, local*a.Rows*n)
				if err := gemm.GroupedMaskedNT(ctx, ref.New(), a, w, &gemm.Out{Rows: local * a.Rows, Cols: n, F32: tensor.HostOf(y)}, res.Count, 0); err != nil {
					return err
				}
				da, _ := tensor.Dequantize(a)
				dw, _ := tensor.Dequantize(w)
				for g := 0; g < local; g++ {
					for m := 0; m < int(res.Count[g]); m++ {
						row := g*a.Rows + m
						got, want := make([]float64, n), make([]float64, n)
						for j := 0; j < n; j++ {
							got[j] = float64(y[row*n+j])
							for k := 0; k < hidden; k++ {
								want[j] += float64(da[row*hidden+k]) * float64(dw[(g*n+j)*hidden+k])
							}
						}
						if d := testutil.CalcDiff(got, want); d > 1e-6 {
							return fmt.Errorf("rank %d expert %d row %d: calc_diff %g", b.Rank(), g, m, d)
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTokensFromFP8: a per-token operand dispatches as FP8 tokens and comes
// back as the same operand; other layouts are ErrShape.
func TestTokensFromFP8(t *testing.T) {
	xf := testutil.Normal(testutil.RNG(5), 3*200, 0, 1)
	x := make([]tensor.BF16, len(xf))
	tensor.EncodeBF16(x, xf)
	for _, opt := range []tensor.QuantOptions{{}, {UE8M0: true}} {
		m, err := tensor.QuantizePerTokenBF16(x, 3, 200, opt)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := ep.TokensFromFP8(m)
		if err != nil || tok.N != 3 || tok.Hidden != 200 || (tok.ScalesUE8M0 != nil) != opt.UE8M0 {
			t.Fatalf("TokensFromFP8 = %+v, %v", tok, err)
		}
		back, err := tok.Operand()
		if err != nil {
			t.Fatal(err)
		}
		d1, _ := tensor.Dequantize(m)
		d2, _ := tensor.Dequantize(back)
		for i := range d1 {
			if d1[i] != d2[i] {
				t.Fatalf("element %d: %v != %v", i, d1[i], d2[i])
			}
		}
	}
	w, _ := tensor.QuantizePerBlock(xf, 3, 200, tensor.QuantOptions{})
	if _, err := ep.TokensFromFP8(w); !errors.Is(err, ep.ErrShape) {
		t.Fatalf("128-row scales: %v", err)
	}
	if _, err := ep.TokensFromFP8(nil); !errors.Is(err, ep.ErrShape) {
		t.Fatalf("nil: %v", err)
	}
	bf := ep.Tokens{N: 3, Hidden: 200, BF16: x}
	if _, err := bf.Operand(); !errors.Is(err, ep.ErrShape) {
		t.Fatalf("BF16 tokens as an FP8 operand: %v", err)
	}
}
