package oracle

import "github.com/fireflyer-go/fireflyer/internal/testutil"

// CalcDiff is DeepGEMM's calc_diff (deep_gemm/testing/numeric.py), the
// measure every gate of this package bounds: in float64, 1 − 2·Σxy /
// Σ(x² + y²), 0 when both are all zero. x and y have equal lengths.
func CalcDiff(x, y []float64) float64 { return testutil.CalcDiff(x, y) }
