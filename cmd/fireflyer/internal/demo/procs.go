package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/sock"
	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/safetensors"
	"github.com/fireflyer-go/fireflyer/gemm"
	gemmcpu "github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// WorkerEnv names the environment variable that turns a re-executed
// program into a demo rank: its value is the rank's work file. Programs that
// embed the demo call RankMain first thing when it is set.
const WorkerEnv = "FIREFLYER_DEMO_WORKER"

// WorkerLauncher returns the command that runs one rank process; the demo
// adds WorkerEnv to its environment. The default re-executes this program
// as `<program> demo`.
type WorkerLauncher func(rank int) *exec.Cmd

func defaultLauncher(int) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return exec.Command(exe, "demo")
}

// runMoEProcesses runs rank 0 in this process and ranks 1…R−1 as child
// processes joined over the tcp or unix transport. Each child gets a work
// file (its tokens, top-k, weights and stacked expert weights, written
// through fs as safetensors) and writes its combined rows back the same way.
func runMoEProcesses(ctx context.Context, opts Options, in moeInput, epOpts ep.Options, out []tensor.BF16, stats []rankStats,
	perRank func(context.Context, *ep.Buffer) error) ([]tensor.BF16, []rankStats, error) {
	R := opts.Ranks
	work, err := os.MkdirTemp("", "fireflyer-demo-ranks-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(work)
	c, err := fs.Open(ctx, work)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	so := sock.Options{Network: opts.Transport, WorldSize: R, Timeout: 60 * time.Second}
	if opts.Transport == "unix" {
		so.MasterAddr = filepath.Join(work, "rendezvous.sock")
	} else {
		so.MasterAddr = "127.0.0.1"
		if so.MasterPort, err = freePort(); err != nil {
			return nil, nil, err
		}
	}
	launch := opts.Worker
	if launch == nil {
		launch = defaultLauncher
	}
	stacks := in.stacks
	var cmds []*exec.Cmd
	defer func() {
		for _, cmd := range cmds {
			if cmd.Process != nil && cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		}
	}()
	for r := 1; r < R; r++ {
		lo, hi := in.Lo(r), in.Lo(r+1)
		meta := map[string]string{
			"rank": strconv.Itoa(r), "world": strconv.Itoa(R), "network": so.Network, "master_addr": so.MasterAddr,
			"master_port": strconv.Itoa(so.MasterPort), "hidden": strconv.Itoa(in.Hidden), "k": strconv.Itoa(in.K),
			"m": strconv.Itoa(in.M), "experts": strconv.Itoa(in.NumExperts), "n": strconv.Itoa(hi - lo),
		}
		xs, _ := tensor.FromSlice(in.X[lo*in.Hidden:hi*in.Hidden], (hi-lo)*in.Hidden)
		tk, _ := tensor.FromSlice(in.TopK[lo*in.K:hi*in.K], (hi-lo)*in.K)
		wt, _ := tensor.FromSlice(in.Weights[lo*in.K:hi*in.K], (hi-lo)*in.K)
		entries := []safetensors.Entry{{Name: "x", Tensor: xs}, {Name: "topk_idx", Tensor: tk}, {Name: "topk_weights", Tensor: wt}}
		entries = append(entries, matrixEntries("gate_up", stacks[r].GateUp)...)
		entries = append(entries, matrixEntries("down", stacks[r].Down)...)
		file := fmt.Sprintf("rank-%d.safetensors", r)
		if err := safetensors.Write(ctx, c, file, entries, &safetensors.Options{Metadata: meta}); err != nil {
			return nil, nil, err
		}
		cmd := launch(r)
		cmd.Env = append(os.Environ(), WorkerEnv+"="+filepath.Join(work, file))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, nil, fmt.Errorf("demo: starting rank %d: %w", r, err)
		}
		cmds = append(cmds, cmd)
	}
	so.Rank = 0
	errc := make(chan error, 1)
	go func() {
		t, err := sock.Dial(ctx, so)
		if err != nil {
			errc <- err
			return
		}
		defer t.Close()
		b, err := ep.New(ctx, t, epOpts)
		if err != nil {
			errc <- err
			return
		}
		defer b.Close()
		errc <- perRank(ctx, b)
	}()
	var errs []error
	if err := <-errc; err != nil {
		errs = append(errs, fmt.Errorf("rank 0: %w", err))
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("rank %d: %w", i+1, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	for r := 1; r < R; r++ {
		f, err := safetensors.Open(ctx, c, fmt.Sprintf("rank-%d.out.safetensors", r), nil)
		if err != nil {
			return nil, nil, fmt.Errorf("demo: rank %d result: %w", r, err)
		}
		y, err := f.Tensor("y")
		if err == nil && y.DType != tensor.BF16T {
			err = fmt.Errorf("demo: rank %d result y is %v", r, y.DType)
		}
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		lo := in.Lo(r)
		copy(out[lo*in.Hidden:], y.BF16s())
		md := f.Metadata()
		stats[r] = rankStats{Dispatch: dur(md["dispatch_ns"]), Experts: dur(md["experts_ns"]), Combine: dur(md["combine_ns"]),
			DispatchBytes: i64(md["dispatch_bytes"]), CombineBytes: i64(md["combine_bytes"]), ExpertFLOPs: i64(md["expert_flops"]),
			ExpertsStart: i64(md["experts_start_unix_ns"])}
		f.Close()
	}
	return out, stats, nil
}

func dur(s string) time.Duration { return time.Duration(i64(s)) }

func i64(s string) int64 {
	v, _ := strconv.ParseInt(s, 10, 64)
	return v
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// matrixEntries stores a stacked FP8 operand as name (E4M3 [G, Rows, K]) and
// name+"_scale" (F32 [G, ceil(Rows/128), ceil(K/128)]).
func matrixEntries(name string, m *gemm.FP8Matrix) []safetensors.Entry {
	d, _ := tensor.FromSlice(m.Data, m.NumGroups(), m.Rows, m.K)
	s, _ := tensor.FromSlice(m.ScalesF32, m.NumGroups(), m.ScaleRowsPerGroup(), m.KBlocks())
	return []safetensors.Entry{{Name: name, Tensor: d}, {Name: name + "_scale", Tensor: s}}
}

func matrixFrom(f *safetensors.File, name string) (*gemm.FP8Matrix, error) {
	d, err := f.Tensor(name)
	if err != nil {
		return nil, err
	}
	s, err := f.Tensor(name + "_scale")
	if err != nil {
		return nil, err
	}
	if d.DType != tensor.E4M3T || s.DType != tensor.F32 || len(d.Shape) != 3 {
		return nil, fmt.Errorf("%w: %s is %v %v", ErrCheckpoint, name, d.DType, d.Shape)
	}
	return &gemm.FP8Matrix{Groups: d.Shape[0], Rows: d.Shape[1], K: d.Shape[2], Data: append([]tensor.E4M3(nil), d.E4M3s()...),
		ScaleRows: 128, ScalesF32: append([]float32(nil), s.F32()...)}, nil
}

// RankMain runs one demo rank process from the work file named by
// WorkerEnv: it joins the ep group over the tcp or unix transport, runs its
// tokens' routed experts and writes the combined rows next to the work file.
func RankMain(ctx context.Context) error {
	path := os.Getenv(WorkerEnv)
	if path == "" {
		return fmt.Errorf("%w: %s is not set", ErrOptions, WorkerEnv)
	}
	c, err := fs.Open(ctx, filepath.Dir(path))
	if err != nil {
		return err
	}
	defer c.Close()
	f, err := safetensors.Open(ctx, c, filepath.Base(path), nil)
	if err != nil {
		return err
	}
	defer f.Close()
	md := f.Metadata()
	atoi := func(k string) int { v, _ := strconv.Atoi(md[k]); return v }
	hidden, k, n := atoi("hidden"), atoi("k"), atoi("n")
	so := sock.Options{Network: md["network"], Rank: atoi("rank"), WorldSize: atoi("world"), MasterAddr: md["master_addr"],
		MasterPort: atoi("master_port"), Timeout: 60 * time.Second}
	x, err := f.Tensor("x")
	if err != nil {
		return err
	}
	tk, err := f.Tensor("topk_idx")
	if err != nil {
		return err
	}
	wt, err := f.Tensor("topk_weights")
	if err != nil {
		return err
	}
	if x.DType != tensor.BF16T || tk.DType != tensor.I32 || wt.DType != tensor.F32 || x.Len() != n*hidden || tk.Len() != n*k || wt.Len() != n*k {
		return fmt.Errorf("%w: work file %s: bad x/topk_idx/topk_weights", ErrCheckpoint, path)
	}
	var ex rankExperts
	if ex.GateUp, err = matrixFrom(f, "gate_up"); err != nil {
		return err
	}
	if ex.Down, err = matrixFrom(f, "down"); err != nil {
		return err
	}
	t, err := sock.Dial(ctx, so)
	if err != nil {
		return err
	}
	defer t.Close()
	b, err := ep.New(ctx, t, ep.Options{LowLatency: &ep.LowLatencyConfig{MaxTokensPerRank: atoi("m"), Hidden: hidden, NumExperts: atoi("experts"), MaxTopK: k}})
	if err != nil {
		return err
	}
	defer b.Close()
	y, s, err := rankMoE(ctx, b, gemmcpu.New(), ex, hidden, x.BF16s(), n, tk.I32s(), wt.F32(), k)
	if err != nil {
		return err
	}
	yt, _ := tensor.FromSlice(append([]tensor.BF16(nil), y...), n, hidden)
	meta := map[string]string{
		"dispatch_ns": strconv.FormatInt(int64(s.Dispatch), 10), "experts_ns": strconv.FormatInt(int64(s.Experts), 10),
		"combine_ns": strconv.FormatInt(int64(s.Combine), 10), "dispatch_bytes": strconv.FormatInt(s.DispatchBytes, 10),
		"combine_bytes": strconv.FormatInt(s.CombineBytes, 10), "expert_flops": strconv.FormatInt(s.ExpertFLOPs, 10),
		"experts_start_unix_ns": strconv.FormatInt(s.ExpertsStart, 10),
	}
	outName := fmt.Sprintf("rank-%d.out.safetensors", so.Rank)
	return safetensors.Write(ctx, c, outName, []safetensors.Entry{{Name: "y", Tensor: yt}}, &safetensors.Options{Metadata: meta, Atomic: true})
}
