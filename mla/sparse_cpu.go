package mla

import "context"

// sparseCPU is the "cpu" sparse backend.
type sparseCPU struct{}

// Name returns "cpu".
func (sparseCPU) Name() string { return "cpu" }

// SparseDecode runs p; see SparseBackend.
func (sparseCPU) SparseDecode(ctx context.Context, p *SparseDecodeProblem, out, lse []float32) error {
	return sparseRef{}.SparseDecode(ctx, p, out, lse)
}

// SparsePrefill runs p; see SparseBackend.
func (sparseCPU) SparsePrefill(ctx context.Context, p *SparsePrefillProblem, out, maxLogits, lse []float32) error {
	return sparseRef{}.SparsePrefill(ctx, p, out, maxLogits, lse)
}
