package oracle_test

import (
	"context"
	"fmt"
	"github.com/fireflyer-go/fireflyer/tensor"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
)

// The conformance suite's two gates on one problem, by hand: a backend's D
// against the float64 product of the unquantized and of the dequantized
// inputs. (A backend's test just calls gemmtest.Run(t, backend,
// gemmtest.Options{}), which checks every case this way.)
func Example() {
	s := oracle.Shape{M: 7, N: 576, K: 130}
	p := oracle.NewProblem(1, s, tensor.QuantOptions{})
	d := oracle.NewOut(s.M, s.N, 0, false, 0)
	if err := gemm.FP8GemmNT(context.Background(), ref.New(), p.A, p.B, d); err != nil {
		panic(err)
	}
	got := oracle.OutF64(d)
	unq := testutil.CalcDiff(got, oracle.MatMulNT64(p.X, p.Y, s.M, s.N, s.K))
	deq := testutil.CalcDiff(got, oracle.MatMulNT64(p.DA, p.DB, s.M, s.N, s.K))
	fmt.Println("unquantized gate:", unq < oracle.GateUnquantized)
	fmt.Println("dequantized gate:", deq < oracle.GateDequantized)
	// Output:
	// unquantized gate: true
	// dequantized gate: true
}
