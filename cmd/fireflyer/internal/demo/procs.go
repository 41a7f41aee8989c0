package demo

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"io"
	"os/exec"

	"github.com/fireflyer-go/fireflyer/cmd/fireflyer/internal/eprank"
	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/sock"
	gemmcpu "github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// WorkerLauncher returns the command that runs one rank process (rank in
// 1…Ranks−1); sock.Launch adds the bootstrap environment and connects its
// standard input and output. The process must call RankMain with them. The
// default runs this program as `<program> rank demo`, the fireflyer
// command's hidden rank role.
type WorkerLauncher func(rank int) *exec.Cmd

// rankWork is what a rank process reads on standard input: its tokens'
// BF16 hidden states [N, Hidden], physical top-k slots and weights [N, K],
// the group's low-latency sizes (M tokens per rank at most, Experts
// physical slots) and its stacked expert weights.
type rankWork struct {
	Hidden, K, M, Experts, N int
	X                        []tensor.BF16
	TopK                     []int32
	Weights                  []float32
	GateUp, Down             fp8Operand
}

// fp8Operand is a stacked FP8 operand as it travels to a rank process: its
// data and scale tensors (tensor.FP8Matrix.Tensors).
type fp8Operand struct{ Data, Scales *tensor.Tensor }

func operandOf(m *tensor.FP8Matrix) (fp8Operand, error) {
	d, s, err := m.Tensors()
	return fp8Operand{Data: d, Scales: s}, err
}

func (o fp8Operand) matrix() (*tensor.FP8Matrix, error) {
	return tensor.FP8FromTensors(o.Data, o.Scales)
}

// rankOutput is what a rank process writes on standard output: its
// tokens' combined rows [N, Hidden] and its phase statistics.
type rankOutput struct {
	Y     []tensor.BF16
	Stats rankStats
}

// runMoEProcesses runs rank 0 in this process and ranks 1…R−1 as processes
// joined over the tcp or unix transport, all started, watched and (on a
// failure, a stall or the context's deadline) killed by sock.Launch. Each
// rank process reads its work on standard input and writes its combined
// rows on standard output; nothing goes through files.
func runMoEProcesses(ctx context.Context, opts Options, in moeInput, epOpts ep.Options, out []tensor.BF16, stats []rankStats,
	perRank func(context.Context, *ep.Buffer) error) ([]tensor.BF16, []rankStats, error) {
	R := opts.Ranks
	works := make([][]byte, R)
	for r := 1; r < R; r++ {
		lo, hi := in.Lo(r), in.Lo(r+1)
		w := rankWork{Hidden: in.Hidden, K: in.K, M: in.M, Experts: in.NumExperts, N: hi - lo,
			X: in.X[lo*in.Hidden : hi*in.Hidden], TopK: in.TopK[lo*in.K : hi*in.K], Weights: in.Weights[lo*in.K : hi*in.K]}
		var err error
		if w.GateUp, err = operandOf(in.stacks[r].GateUp); err == nil {
			w.Down, err = operandOf(in.stacks[r].Down)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("demo: rank %d experts: %w", r, err)
		}
		var b bytes.Buffer
		if err := gob.NewEncoder(&b).Encode(&w); err != nil {
			return nil, nil, fmt.Errorf("demo: rank %d work: %w", r, err)
		}
		works[r] = b.Bytes()
	}
	lc := sock.LaunchConfig{
		Network: eprank.Network(opts.Transport), WorldSize: R, Args: []string{"rank", "demo"}, Env: eprank.Env(opts.Transport),
		Stdin: func(r int) io.Reader { return bytes.NewReader(works[r]) },
		Local: func(ctx context.Context, so sock.Options) error {
			t, err := eprank.Dial(ctx, opts.Transport, so)
			if err != nil {
				return err
			}
			defer t.Close()
			b, err := ep.New(ctx, t, epOpts)
			if err != nil {
				return err
			}
			defer b.Close()
			return perRank(ctx, b)
		},
	}
	if opts.Worker != nil {
		lc.Command = opts.Worker
	}
	exits, err := sock.Launch(ctx, lc)
	if err != nil {
		return nil, nil, fmt.Errorf("demo: ranks over %s: %w", opts.Transport, err)
	}
	for r := 1; r < R; r++ {
		var o rankOutput
		if err := gob.NewDecoder(bytes.NewReader(exits[r].Stdout)).Decode(&o); err != nil {
			return nil, nil, fmt.Errorf("demo: rank %d result: %w", r, err)
		}
		lo, hi := in.Lo(r), in.Lo(r+1)
		if len(o.Y) != (hi-lo)*in.Hidden {
			return nil, nil, fmt.Errorf("demo: rank %d result holds %d values, want %d", r, len(o.Y), (hi-lo)*in.Hidden)
		}
		copy(out[lo*in.Hidden:], o.Y)
		stats[r] = o.Stats
	}
	return out, stats, nil
}

// RankMain runs one demo rank process started by sock.Launch (see
// WorkerLauncher): it reads its work from stdin, joins the ep group over
// the tcp, unix or ucx transport with the launcher's bootstrap environment and
// deadline, runs its tokens' routed experts and writes the combined rows
// and its statistics to stdout.
func RankMain(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	so, ctx, cancel, err := sock.LaunchedOptions(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	var w rankWork
	if err := gob.NewDecoder(stdin).Decode(&w); err != nil {
		return fmt.Errorf("%w: rank %d: reading its work from standard input: %w", ErrOptions, so.Rank, err)
	}
	if w.Hidden < 1 || w.K < 1 || w.N < 0 || len(w.X) != w.N*w.Hidden || len(w.TopK) != w.N*w.K || len(w.Weights) != w.N*w.K {
		return fmt.Errorf("%w: rank %d: inconsistent work (N=%d, hidden %d, top-%d; %d, %d, %d values)", ErrOptions, so.Rank, w.N, w.Hidden, w.K, len(w.X), len(w.TopK), len(w.Weights))
	}
	t, err := eprank.DialLaunched(ctx, so)
	if err != nil {
		return err
	}
	defer t.Close()
	b, err := ep.New(ctx, t, ep.Options{LowLatency: &ep.LowLatencyConfig{MaxTokensPerRank: w.M, Hidden: w.Hidden, NumExperts: w.Experts, MaxTopK: w.K}})
	if err != nil {
		return err
	}
	defer b.Close()
	var ex rankExperts
	if ex.GateUp, err = w.GateUp.matrix(); err == nil {
		ex.Down, err = w.Down.matrix()
	}
	if err != nil {
		return fmt.Errorf("demo: rank work: %w", err)
	}
	y, s, err := rankMoE(ctx, b, gemmcpu.New(gemmcpu.Options{}), ex, w.Hidden, w.X, w.N, w.TopK, w.Weights, w.K)
	if err != nil {
		return err
	}
	return gob.NewEncoder(stdout).Encode(&rankOutput{Y: y, Stats: s})
}
