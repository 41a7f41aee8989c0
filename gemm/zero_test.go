package gemm

import (
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
)

// TestZeroWidthHugeDims: a zero dimension makes every helper's result
// empty, so a huge other dimension must not make it walk 2^40 empty rows.
func TestZeroWidthHugeDims(t *testing.T) {
	const huge = 1 << 40
	calls := map[string]func() error{
		"PackUE8M0":   func() error { _, err := PackUE8M0(nil, huge, 0); return err },
		"UnpackUE8M0": func() error { _, err := UnpackUE8M0(nil, huge, 0); return err },
		"MNMajorTMAAligned/groups": func() error {
			_, _, err := MNMajorTMAAligned[float32](nil, huge, 0, 1)
			return err
		},
		"MNMajorTMAAligned/mn": func() error {
			_, _, err := MNMajorTMAAligned[uint32](nil, 1, huge, 0)
			return err
		},
	}
	leaktest.Returns(t, 5*time.Second, calls)
}
