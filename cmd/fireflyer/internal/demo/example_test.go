package demo_test

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/cmd/fireflyer/internal/demo"
)

// The smallest useful run: a DeepSeek-V3 layer shrunk 64×, 8 sequences on
// 2 in-process expert-parallel ranks, checked against float64.
func Example() {
	r, err := demo.Run(context.Background(), demo.Options{Scale: 64, Batch: 8, Ranks: 2, Prefix: 24})
	if err != nil {
		panic(err)
	}
	fmt.Println("experts:", r.Model.Experts, "hidden:", r.Model.Hidden)
	fmt.Println("checksums verified:", r.Read.Verified == r.Read.Tensors)
	fmt.Println("check ok:", r.OK)
	// Output:
	// experts: 16 hidden: 128
	// checksums verified: true
	// check ok: true
}
