package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// gemmFP4Flags are fireflyer gemm's FP4 flags: --fp4 runs DeepGEMM's
// fp8_fp4_gemm_nt (FP8 A, FP4 E2M1 B) instead of fp8_gemm_nt, with B's
// scales every --fp4-gran K-elements.
type gemmFP4Flags struct {
	on   *bool
	gran *int
}

func addGemmFP4Flags(fs *flag.FlagSet) gemmFP4Flags {
	return gemmFP4Flags{
		on:   fs.Bool("fp4", false, "B in FP4 E2M1 with per-row scales: DeepGEMM fp8_fp4_gemm_nt (gate 0.01 vs unquantized)"),
		gran: fs.Int("fp4-gran", 32, "with --fp4: K-elements per B scale, 32 (DeepGEMM's FP4 recipe) or 128"),
	}
}

// check reports a usage error for bad FP4 flags with -k k.
func (f gemmFP4Flags) check(k int, stderr io.Writer) bool {
	if !*f.on {
		return true
	}
	if *f.gran != tensor.FP4ScaleK32 && *f.gran != tensor.FP4ScaleK128 {
		fmt.Fprintf(stderr, "fireflyer gemm: --fp4-gran %d: want 32 or 128\n", *f.gran)
		return false
	}
	if k%2 != 0 {
		fmt.Fprintf(stderr, "fireflyer gemm: --fp4 needs an even -k (two FP4 values per byte), got %d\n", k)
		return false
	}
	return true
}

// gemmCase is what fireflyer gemm runs and checks: the call, the
// unquantized and dequantized operands of the float64 oracles, and the
// gate against the unquantized product.
type gemmCase struct {
	call            func(ctx context.Context) error
	x, y, dx, dy    []float32
	gateUnquantized float64
}

// fp4Case returns the FP8×FP4 problem of seed and s on be, into d.
func (f gemmFP4Flags) fp4Case(seed uint64, s oracle.Shape, opt tensor.QuantOptions, be gemm.Backend, d *gemm.Out) gemmCase {
	p := oracle.NewFP4Problem(seed, s, *f.gran, opt)
	return gemmCase{
		call: func(ctx context.Context) error { return gemm.FP8FP4GemmNT(ctx, be, p.A, p.B, d) },
		x:    p.X, y: p.Y, dx: p.DA, dy: p.DB,
		gateUnquantized: oracle.GateFP8FP4,
	}
}
