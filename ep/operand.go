package ep

import (
	"fmt"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// TokensFromFP8 wraps m (no copy) as FP8 tokens to dispatch: m must be one
// group of N = m.Rows contiguous rows of Hidden = m.K channels with
// per-token 1×128 scales, as tensor.QuantizePerToken and
// tensor.QuantizePerTokenBF16 return. Errors: ErrShape for anything else
// (a malformed operand, several groups, a row stride, 128-row scales), or
// one wrapping tensor.ErrNotHost for storage that is not host memory (ep
// moves tokens through host buffers).
func TokensFromFP8(m *tensor.FP8Matrix) (Tokens, error) {
	if err := m.Check(); err != nil {
		return Tokens{}, errorf(ErrShape, "x: %v", err)
	}
	if m.NumGroups() != 1 || m.RowStride() != m.K || m.ScaleRows != 1 {
		return Tokens{}, errorf(ErrShape, "x: want one contiguous group with 1x128 scales, got %d groups, stride %d, %d-row scales",
			m.NumGroups(), m.RowStride(), m.ScaleRows)
	}
	h, err := m.Host()
	if err != nil {
		return Tokens{}, fmt.Errorf("ep: x: %w", err)
	}
	x := Tokens{N: m.Rows, Hidden: m.K, FP8: h.Data[:m.Rows*m.K]}
	if m.Format == tensor.ScaleUE8M0 {
		x.ScalesUE8M0 = h.ScalesUE8M0
	} else {
		x.Scales = h.ScalesF32
	}
	if x.FP8 == nil {
		x.FP8 = []tensor.E4M3{}
	}
	return x, nil
}

// Operand returns x's FP8 rows as a one-group operand [N, Hidden] with
// per-token 1×128 scales (no copy: it aliases x), ready for the A of
// gemm.FP8GemmNT or gemm.GroupedContiguousNT. Errors: ErrShape if x is not
// FP8 or its slices are too short.
func (x *Tokens) Operand() (*tensor.FP8Matrix, error) {
	return x.grouped(1, x.N)
}

// grouped views x's FP8 rows as [groups, rows, Hidden].
func (x *Tokens) grouped(groups, rows int) (*tensor.FP8Matrix, error) {
	if x.FP8 == nil {
		return nil, errorf(ErrShape, "x holds BF16 tokens, not FP8")
	}
	m := &tensor.FP8Matrix{Groups: groups, Rows: rows, K: x.Hidden, Data: tensor.Host[tensor.E4M3](x.FP8), ScaleRows: 1}
	if x.ScalesUE8M0 != nil {
		m.Format, m.ScalesUE8M0 = tensor.ScaleUE8M0, tensor.Host[tensor.UE8M0](x.ScalesUE8M0)
	} else if x.Scales != nil {
		m.ScalesF32 = tensor.Host[float32](x.Scales)
	}
	if err := m.Check(); err != nil {
		return nil, errorf(ErrShape, "x: %v", err)
	}
	return m, nil
}

// FP8 returns the received FP8 tokens as the batched operand [E/R local
// experts, R·M rows, Hidden] with per-token 1×128 scales (no copy: it
// aliases r.X), the A of gemm.GroupedMaskedNT with maskedM = r.Count: the
// packed layout DeepEP's low-latency dispatch hands to DeepGEMM's
// m_grouped_fp8_gemm_nt_masked. Errors: ErrShape if the dispatch was not
// FP8 (UseFP8 unset) or r is empty.
func (r *LowLatencyResult) FP8() (*tensor.FP8Matrix, error) {
	g := len(r.Count)
	if g == 0 || r.X.N%g != 0 {
		return nil, errorf(ErrShape, "result holds %d rows for %d local experts", r.X.N, g)
	}
	return r.X.grouped(g, r.X.N/g)
}
