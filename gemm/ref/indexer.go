package ref

import (
	"context"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/tensor"
)

var _ gemm.IndexerBackend = (*Backend)(nil)

// score returns k_scale · Σ_h w[h] · max(0, Σ_c q[h,c]·k[c]) in float32,
// summing c and then h in ascending order: the literal formula of
// DeepGEMM's indexer kernels (fp8_mqa_logits, fp8_paged_mqa_logits).
func score(q []tensor.E4M3, w []float32, k []tensor.E4M3, kScale float32, heads, d int) float32 {
	var acc float32
	for h := 0; h < heads; h++ {
		qh := q[h*d : (h+1)*d]
		var s float32
		for c, kc := range k[:d] {
			s = float32(s + float32(qh[c].Float32()*kc.Float32()))
		}
		if s > 0 {
			acc = float32(acc + float32(w[h]*s))
		}
	}
	return float32(kScale * acc)
}

// MQALogits implements gemm.IndexerBackend: the literal fp8_mqa_logits,
// one key at a time.
func (*Backend) MQALogits(ctx context.Context, in *gemm.MQALogitsInput, logits []float32, clean bool) error {
	h, d, n := in.Heads, in.HeadDim, in.SeqLenKV
	for i := 0; i < in.SeqLen; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		lo, hi := in.Range(i)
		q, w, row := in.Q[i*h*d:(i+1)*h*d], in.Weights[i*h:(i+1)*h], logits[i*n:(i+1)*n]
		for j := 0; j < n; j++ {
			switch {
			case j >= lo && j < hi:
				row[j] = score(q, w, in.K[j*d:(j+1)*d], in.KScales[j], h, d)
			case clean:
				row[j] = gemm.NegInf
			}
		}
	}
	return nil
}

// PagedMQALogits implements gemm.IndexerBackend: the literal
// fp8_paged_mqa_logits, each key read through the block table.
func (*Backend) PagedMQALogits(ctx context.Context, in *gemm.PagedMQALogitsInput, logits []float32, clean bool) error {
	c := in.Cache
	h, d, w := in.Heads, c.HeadDim, in.MaxContextLen
	for b := 0; b < in.B; b++ {
		for t := 0; t < in.NextN; t++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			r := b*in.NextN + t
			vis := in.Visible(b, t)
			q, wt, row := in.Q[r*h*d:(r+1)*h*d], in.Weights[r*h:(r+1)*h], logits[r*w:(r+1)*w]
			for j := 0; j < w; j++ {
				switch {
				case j < vis:
					blk, slot := int(in.BlockTable[b*in.MaxBlocks+j/c.BlockKV]), j%c.BlockKV
					row[j] = score(q, wt, c.Codes(blk, slot), c.Scale(blk, slot), h, d)
				case clean:
					row[j] = gemm.NegInf
				}
			}
		}
	}
	return nil
}
