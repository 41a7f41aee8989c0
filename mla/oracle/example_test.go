package oracle_test

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/mla/oracle"
)

// One case of the grid by hand: build it (random-permutation block table,
// NaN in unused slots), decode it with a backend and hold the result to the
// float64 oracle with FlashMLA's tolerances. (A backend's test just calls
// oracle.Run.)
func Example() {
	c := oracle.Case{B: 2, SQ: 2, HQ: 16, HKV: 1, SK: 100, Varlen: true, Causal: true, Seed: 1}
	in, err := c.Build()
	if err != nil {
		panic(err)
	}
	out, lse, err := mla.Decode(context.Background(), mla.Default(), in.Q, in.Cache, in.BlockTable, in.Seqlens, &in.Opts)
	if err != nil {
		panic(err)
	}
	refOut, refLSE, err := oracle.Decode(in)
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Name(), oracle.Check(out, lse, refOut, refLSE) == nil)
	// Output:
	// b2_sq2_sk100_hq16_hkv1_causal_varlen_p64_BF16 true
}
