package tensor

import (
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
)

// TestQuantZeroWidthHugeDims: a zero dimension makes every helper's result
// empty, so a huge other dimension must not make it walk 2^40 empty rows.
func TestQuantZeroWidthHugeDims(t *testing.T) {
	const huge = 1 << 40
	calls := map[string]func() error{
		"QuantizePerToken": func() error { _, err := QuantizePerToken(nil, huge, 0, QuantOptions{}); return err },
		"QuantizePerBlock": func() error { _, err := QuantizePerBlock(nil, huge, 0, QuantOptions{}); return err },
		"Dequantize": func() error {
			_, err := Dequantize(&FP8Matrix{Rows: huge, ScaleRows: 1})
			return err
		},
		"Stack": func() error {
			_, err := Stack(&FP8Matrix{Rows: huge, ScaleRows: 1}, &FP8Matrix{Rows: huge, ScaleRows: 1})
			return err
		},
	}
	leaktest.Returns(t, 5*time.Second, calls)
}
