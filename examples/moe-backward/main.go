// Command moe-backward trains one step of one MoE expert layer in FP8 the
// way DeepSeek-V3 does, with the gemm package's training calls, and checks
// every result against float64:
//
//   - forward: Y = X·W_gᵀ for the tokens routed to expert g
//     (m-grouped contiguous FP8 GEMM, X per token, W per 128×128 block);
//   - data gradient: dX = dY·W_g (FP8 NN layout: W's FP8 bytes and 128×128
//     scales serve as the MN-major operand as they are, no requantization);
//   - weight gradient: dW_g = dY_gᵀ·X_g for every expert at once (k-grouped
//     FP8 TN GEMM over the tokens of each expert, dY and X per channel).
//
// It prints upstream's calc_diff of each against the float64 result of the
// unquantized operands (DeepGEMM's gate is 1e-3).
//
//	go run ./examples/moe-backward [-backend cpu|ref] [-experts 4] [-hidden 640] [-inter 320] [-tokens 256]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"

	"github.com/fireflyer-go/fireflyer/gemm"
	_ "github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/oracle"
	_ "github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Config sizes the layer: G experts, each a linear map from Hidden to Inter
// features, and about Tokens tokens per expert (drawn from [0.5, 1.5]·Tokens;
// expert 1 gets none, to show an empty group).
type Config struct {
	Backend                        string
	Experts, Hidden, Inter, Tokens int
	Seed                           uint64
}

// Result holds the calc_diff of each GEMM against float64.
type Result struct {
	Forward, DGrad, WGrad float64
	Rows                  int // rows of the contiguous layout (tokens + padding)
}

func main() {
	var c Config
	flag.StringVar(&c.Backend, "backend", "cpu", "gemm backend (cpu, ref)")
	flag.IntVar(&c.Experts, "experts", 4, "experts G")
	flag.IntVar(&c.Hidden, "hidden", 640, "hidden size (K of the forward GEMM)")
	flag.IntVar(&c.Inter, "inter", 320, "expert output size (N of the forward GEMM)")
	flag.IntVar(&c.Tokens, "tokens", 256, "mean tokens per expert")
	flag.Uint64Var(&c.Seed, "seed", 1, "random seed")
	flag.Parse()
	if err := run(os.Stdout, c); err != nil {
		fmt.Fprintln(os.Stderr, "moe-backward:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, c Config) error {
	r, err := Step(context.Background(), c)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%d experts, hidden %d, inter %d, %d rows (tokens + 128-row padding), backend %s\n",
		c.Experts, c.Hidden, c.Inter, r.Rows, c.Backend)
	fmt.Fprintf(w, "forward  Y  = X·W_gᵀ   m-grouped FP8 NT   calc_diff %.2e\n", r.Forward)
	fmt.Fprintf(w, "dgrad    dX = dY·W_g   FP8 NN             calc_diff %.2e\n", r.DGrad)
	fmt.Fprintf(w, "wgrad    dW = dYᵀ·X    k-grouped FP8 TN   calc_diff %.2e\n", r.WGrad)
	if worst := max(r.Forward, r.DGrad, r.WGrad); !(worst < oracle.GateUnquantized) {
		return fmt.Errorf("calc_diff %.2e above the %.0e gate", worst, oracle.GateUnquantized)
	}
	return nil
}

// Step runs the forward and backward GEMMs of one layer on random inputs
// and returns their calc_diff against float64.
func Step(ctx context.Context, c Config) (Result, error) {
	if c.Experts < 1 || c.Hidden < 1 || c.Inter < 1 || c.Tokens < 0 {
		return Result{}, fmt.Errorf("bad config %+v", c)
	}
	be, err := gemm.NewBackend(c.Backend, gemm.Options{})
	if err != nil {
		return Result{}, err
	}
	g, h, n := c.Experts, c.Hidden, c.Inter
	rng := rand.New(rand.NewPCG(c.Seed, 23))

	// Route: expert e gets cnt[e] tokens, its segment padded to 128 rows.
	var idx []int32
	var seg [][2]int // start row, tokens
	ks := make([]int, g)
	for e := 0; e < g; e++ {
		cnt := int(float64(c.Tokens) * (0.5 + rng.Float64()))
		if e == 1 {
			cnt = 0
		}
		seg = append(seg, [2]int{len(idx), cnt})
		ks[e] = gemm.AlignM(cnt)
		for j := 0; j < ks[e]; j++ {
			v := int32(e)
			if j >= cnt {
				v = -1
			}
			idx = append(idx, v)
		}
	}
	rows := len(idx)
	// X [rows, h] and dY [rows, n]: randn on token rows, zero on padding.
	x, dy := make([]float32, rows*h), make([]float32, rows*n)
	for i, v := range idx {
		if v < 0 {
			continue
		}
		for j := 0; j < h; j++ {
			x[i*h+j] = bf16(rng.NormFloat64())
		}
		for j := 0; j < n; j++ {
			dy[i*n+j] = bf16(rng.NormFloat64())
		}
	}
	wts := make([][]float32, g) // W_g [n, h]
	for e := range wts {
		wts[e] = make([]float32, n*h)
		for i := range wts[e] {
			wts[e][i] = bf16(rng.NormFloat64())
		}
	}

	// Forward: Y = X·W_gᵀ.
	xq, err := tensor.QuantizePerToken(x, rows, h, tensor.QuantOptions{})
	if err != nil {
		return Result{}, err
	}
	wq := make([]*tensor.FP8Matrix, g)
	for e := range wq {
		if wq[e], err = tensor.QuantizePerBlock(wts[e], n, h, tensor.QuantOptions{}); err != nil {
			return Result{}, err
		}
	}
	wAll, err := tensor.Stack(wq...)
	if err != nil {
		return Result{}, err
	}
	y := make([]float32, rows*n)
	if err := gemm.GroupedContiguousNT(ctx, be, xq, wAll, &gemm.Out{Rows: rows, Cols: n, F32: tensor.HostOf(y), ZeroUnused: true}, idx); err != nil {
		return Result{}, fmt.Errorf("forward: %w", err)
	}

	// Data gradient: dX[rows of g] = dY[rows of g]·W_g. The reduction runs
	// over W's rows, so W_g [n, h] is the MN-major operand (logical [h, n]):
	// the same bytes, and its 128×128 scales read as [ceil(n/128),
	// ceil(h/128)] K-block-major.
	dyq, err := tensor.QuantizePerToken(dy, rows, n, tensor.QuantOptions{})
	if err != nil {
		return Result{}, err
	}
	dx := make([]float32, rows*h)
	for e, sg := range seg {
		if sg[1] == 0 {
			continue
		}
		wmn := &tensor.FP8MNMatrix{MN: h, K: n, Data: wq[e].Data, ScaleMN: tensor.ScaleBlock, ScalesF32: wq[e].ScalesF32}
		a, err := rowsOf(dyq, sg[0], sg[1])
		if err != nil {
			return Result{}, err
		}
		out := &gemm.Out{Rows: sg[1], Cols: h, F32: tensor.HostOf(dx[sg[0]*h : (sg[0]+sg[1])*h])}
		if err := gemm.FP8GemmNN(ctx, be, a, wmn, out); err != nil {
			return Result{}, fmt.Errorf("dgrad expert %d: %w", e, err)
		}
	}

	// Weight gradient: dW_g = dY_gᵀ·X_g over each expert's rows (its K
	// group, padding included: those rows are zero). dY and X are stored
	// [rows, ·], i.e. MN-major with K = rows, quantized per channel.
	dyc, err := tensor.QuantizePerChannel(dy, rows, n, tensor.QuantOptions{})
	if err != nil {
		return Result{}, err
	}
	xc, err := tensor.QuantizePerChannel(x, rows, h, tensor.QuantOptions{})
	if err != nil {
		return Result{}, err
	}
	dw := make([]float32, g*n*h)
	if err := gemm.KGroupedFP8GemmTNContiguous(ctx, be, dyc, xc, &gemm.Out{Rows: g * n, Cols: h, F32: tensor.HostOf(dw)}, ks); err != nil {
		return Result{}, fmt.Errorf("wgrad: %w", err)
	}

	// float64 references from the unquantized values.
	res := Result{Rows: rows}
	var gotY, wantY, gotX, wantX []float64
	for e, sg := range seg {
		if sg[1] == 0 {
			continue
		}
		xs, dys := x[sg[0]*h:(sg[0]+sg[1])*h], dy[sg[0]*n:(sg[0]+sg[1])*n]
		wantY = append(wantY, oracle.MatMulNT64(xs, wts[e], sg[1], n, h)...)
		gotY = append(gotY, f64(y[sg[0]*n:(sg[0]+sg[1])*n])...)
		wantX = append(wantX, oracle.MatMulNT64(dys, oracle.Transposed(wts[e], n, h), sg[1], h, n)...)
		gotX = append(gotX, f64(dx[sg[0]*h:(sg[0]+sg[1])*h])...)
	}
	var wantW []float64
	for e, sg := range seg {
		r0, r1 := sg[0], sg[0]+ks[e]
		wantW = append(wantW, oracle.MatMulNT64(oracle.Transposed(dy[r0*n:r1*n], r1-r0, n), oracle.Transposed(x[r0*h:r1*h], r1-r0, h), n, h, r1-r0)...)
	}
	res.Forward = oracle.CalcDiff(gotY, wantY)
	res.DGrad = oracle.CalcDiff(gotX, wantX)
	res.WGrad = oracle.CalcDiff(f64(dw), wantW)
	return res, nil
}

// rowsOf is rows [r0, r0+rows) of the per-token operand m as an operand of
// its own (a view: no copy).
func rowsOf(m *tensor.FP8Matrix, r0, rows int) (*tensor.FP8Matrix, error) {
	h, err := m.Host()
	if err != nil {
		return nil, err
	}
	kbs := m.KBlocks()
	v := *m
	v.Rows = rows
	v.Data = tensor.HostOf(h.Data[r0*m.RowStride():])
	v.ScalesF32 = tensor.HostOf(h.ScalesF32[r0*kbs : (r0+rows)*kbs])
	return &v, nil
}

func bf16(v float64) float32 { return tensor.BF16FromFloat32(float32(v)).Float32() }

func f64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}
