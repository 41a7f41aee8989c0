package mla_test

import (
	"fmt"
	"math"

	"github.com/fireflyer-go/fireflyer/mla"
)

// Select the top 4 keys of two indexer rows: ties go to the lower column,
// −Inf (masked) columns are never selected, and a row with fewer valid
// columns is padded with −1.
func ExampleTopKIndices() {
	inf := float32(math.Inf(-1))
	logits := []float32{
		0.5, 2, 2, -1, 3, 0, // row 0
		1, inf, inf, 4, inf, inf, // row 1: two valid columns
	}
	idx := make([]int32, 2*4)
	if err := mla.TopKIndices(idx, logits, 2, 6, 4, nil); err != nil {
		panic(err)
	}
	fmt.Println(idx[:4], idx[4:])
	// Output: [4 1 2 0] [3 0 -1 -1]
}
