package dsv3

import (
	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Weights are one MoE layer's weights as the fast path uses them: FP8
// linear layers with their 128×128 block scales (gemm operands), float32
// norms, the BF16 router and its bias.
type Weights struct {
	InputNorm, QANorm, KVANorm, PostNorm []float32
	QA, QB, KVA, KVB, O                  *tensor.FP8Matrix
	Gate                                 *gemm.BF16Matrix // [n_routed_experts, hidden]
	Bias                                 []float32        // [n_routed_experts]
	ExpGate, ExpUp, ExpDown              []*tensor.FP8Matrix
	ShGate, ShUp, ShDown                 *tensor.FP8Matrix
	Indexer                              *IndexerWeights // DeepSeek-V3.2's lightning indexer; nil for DeepSeek-V3
}

// Dequantized returns the layer's weights dequantized to float32, in the
// float64 reference's layout.
func (w *Weights) Dequantized(cfg Config) (*LayerWeights, error) {
	lin := func(m *tensor.FP8Matrix) (Linear, error) {
		v, err := tensor.Dequantize(m)
		return Linear{Out: m.Rows, In: m.K, W: v}, err
	}
	var err error
	d := &LayerWeights{InputNorm: w.InputNorm, QANorm: w.QANorm, KVANorm: w.KVANorm, PostNorm: w.PostNorm, Bias: w.Bias}
	for _, p := range []struct {
		dst *Linear
		src *tensor.FP8Matrix
	}{{&d.QA, w.QA}, {&d.QB, w.QB}, {&d.KVA, w.KVA}, {&d.KVB, w.KVB}, {&d.O, w.O}, {&d.Shared.Gate, w.ShGate}, {&d.Shared.Up, w.ShUp}, {&d.Shared.Down, w.ShDown}} {
		if *p.dst, err = lin(p.src); err != nil {
			return nil, err
		}
	}
	gb, err := tensor.HostSlice(w.Gate.Data)
	if err != nil {
		return nil, err
	}
	g := make([]float32, len(gb))
	tensor.DecodeBF16(g, gb)
	d.Gate = Linear{Out: w.Gate.Rows, In: w.Gate.K, W: g}
	d.Experts = make([]Expert, len(w.ExpGate))
	for j := range d.Experts {
		e := &d.Experts[j]
		if e.Gate, err = lin(w.ExpGate[j]); err != nil {
			return nil, err
		}
		if e.Up, err = lin(w.ExpUp[j]); err != nil {
			return nil, err
		}
		if e.Down, err = lin(w.ExpDown[j]); err != nil {
			return nil, err
		}
	}
	if w.Indexer != nil {
		if d.Indexer, err = w.Indexer.Dequantized(); err != nil {
			return nil, err
		}
	}
	_ = cfg
	return d, nil
}
