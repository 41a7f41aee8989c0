package demo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	"github.com/fireflyer-go/fireflyer/cmd/fireflyer/internal/dsv3"
	"github.com/fireflyer-go/fireflyer/cmd/fireflyer/internal/eprank"
	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/pipeline"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Threshold is the calc_diff the layer's output must stay under.
const Threshold = 0.002

// PartThreshold is the calc_diff each half of the layer must stay under on
// its own: the attention half's o_proj output and the MoE half (shared plus
// routed experts). The residual stream dominates the layer's output, so a
// wrong stage can hide under Threshold: a softmax scale without YaRN's
// mscale² moves the output's calc_diff only from about 3e-4 to 1.7e-3, but
// the attention part's from about 4e-4 to 6.5e-3; dropping one of the
// top-k experts lifts the MoE part to 6e-3 or more. Correct runs show
// attention 3e-4 … 1.1e-3 and MoE 0.9e-3 … 2.3e-3 (two chained FP8 GEMMs
// with re-quantized activations; the upper ends at batch 1 and scale 64).
const PartThreshold = 0.004

// RouterScoreTolerance bounds the router's sigmoid scores against the
// float64 reference's. The reference recomputes the MoE half with the fast
// path's expert choice (so that near-tie flips do not dominate its
// calc_diff), which would hide a wrong selection (say, one that ignores
// e_score_correction_bias); so the check also redoes the selection from the
// fast path's scores, which must agree token for token, and holds those
// scores to the float64 ones.
const RouterScoreTolerance = 0.05

// ErrOptions reports demo options that cannot run.
var ErrOptions = errors.New("demo: bad options")

// Options configure Run. The zero value of a field means its default.
type Options struct {
	// Model is "v3" (DeepSeek-V3, dense MLA) or "v3.2" (DeepSeek-V3.2:
	// lightning indexer, top-k, sparse MLA over the FP8 cache); "" means
	// what Config or the checkpoint's config.json says, else "v3". A config
	// that disagrees with it is an ErrOptions.
	Model      string
	Config     *dsv3.Config // nil: the published config of Model (or the checkpoint's config.json)
	Scale      int          // shrink factor for widths and expert counts of the generated checkpoint (default 8; 1 = full size; not used with Checkpoint)
	Batch      int          // sequences decoded (default 64)
	Ranks      int          // expert-parallel ranks (default 8)
	Transport  string       // "inproc" (default), "tcp", "unix" or "ucx"
	Prefix     int          // longest prefix in the KV cache (default 256, for v3.2 2·index_topk, so that most prefixes are longer than top-k); sequence b holds Prefix/2 … Prefix tokens
	PageSize   int          // KV cache page (default 64)
	Seed       uint64       // weights and inputs (default 1)
	Layer      int          // MoE layer index (default first_k_dense_replace, 3)
	Dir        string       // where the generated checkpoint goes ("" = a temporary directory, removed after)
	Checkpoint string       // an existing DeepSeek-V3 checkpoint directory to read instead of generating one
	FSBackend  string       // fs backend: auto (default), uring, posix
	// Progress, when non-nil, is told about checkpoint I/O (bytes done,
	// total) for a progress bar.
	Progress func(stage string, done, total int64)
	// Worker returns the command of each rank process for the tcp and unix
	// transports (started by sock.Launch, within ctx's deadline); nil means
	// this program as `<program> rank demo` (see RankMain).
	Worker WorkerLauncher

	prefixDefault bool // Prefix was left to its default (V3.2 widens it)
}

// Stage is one row of the stage table.
type Stage struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	Bytes   int64   `json:"bytes,omitempty"` // bytes moved (I/O, communication, cache reads)
	FLOPs   int64   `json:"flops,omitempty"` // floating-point operations (2 per multiply-add)
	GBps    float64 `json:"gb_per_s,omitempty"`
	GFLOPs  float64 `json:"gflop_per_s,omitempty"`
}

// Result is everything the demo measured.
type Result struct {
	Model struct {
		Hidden       int     `json:"hidden_size"`
		Experts      int     `json:"n_routed_experts"`
		Heads        int     `json:"num_attention_heads"`
		TopK         int     `json:"num_experts_per_tok"`
		Groups       int     `json:"n_group"`
		TopKGroup    int     `json:"topk_group"`
		MoEInter     int     `json:"moe_intermediate_size"`
		QLoraRank    int     `json:"q_lora_rank"`
		Scale        int     `json:"scale"` // --scale of the generated checkpoint; 0 when read from --checkpoint
		SoftmaxScale float64 `json:"softmax_scale"`
		IndexNHeads  int     `json:"index_n_heads,omitempty"` // DeepSeek-V3.2 only
		IndexTopK    int     `json:"index_topk,omitempty"`
	} `json:"model"`
	// Indexer is the check of DeepSeek-V3.2's indexer and top-k (nil for
	// DeepSeek-V3).
	Indexer    *IndexerCheck    `json:"indexer,omitempty"`
	Batch      int              `json:"batch"`
	Ranks      int              `json:"ranks"`
	Transport  string           `json:"transport"`
	GemmKernel string           `json:"gemm_kernel"`
	Written    *CheckpointStats `json:"checkpoint_written,omitempty"`
	Read       *CheckpointStats `json:"checkpoint_read"`
	Stages     []Stage          `json:"stages"`
	EPLB       struct {
		Replicas                int     `json:"replicas"`
		ImbalanceBefore         float64 `json:"imbalance_before"` // max/mean GPU load without replication (warm-up loads)
		ImbalanceAfter          float64 `json:"imbalance_after"`  // with the EPLB plan
		BalancednessBefore      float64 `json:"balancedness_before"`
		BalancednessAfter       float64 `json:"balancedness_after"`
		ObservedImbalanceBefore float64 `json:"observed_imbalance_before"` // this batch's token-slots per rank, no replication
		ObservedImbalanceAfter  float64 `json:"observed_imbalance_after"`  // with the plan and the replica rule
	} `json:"eplb"`
	Pipeline struct {
		Stages      int     `json:"stages"`
		MicroBatch  int     `json:"micro_batches"`
		F, B, W, FB int64   `json:"-"`
		Costs       string  `json:"costs_us"`
		Makespan    int64   `json:"makespan_us"`
		BubbleRatio float64 `json:"bubble_ratio"`
		PeakAct     int     `json:"peak_activations"`
	} `json:"pipeline"`
	RouterAgreement int `json:"router_agreement"` // tokens whose float64 router picks the same experts (near ties may flip)
	// RouterMismatch counts tokens whose experts differ from what noaux_tc
	// selects from the fast path's own sigmoid scores and the checkpoint's
	// correction bias (0 unless the routing stage is wrong).
	RouterMismatch int `json:"router_mismatch"`
	// RouterScoreDiff is the largest |score − float64 score| of the
	// router's sigmoid scores (up to about 2e-2: BF16 gate GEMM input and the
	// attention half's error before it).
	RouterScoreDiff float64 `json:"router_score_max_diff"`
	AttnDiff        float64 `json:"attention_calc_diff"` // attention's o_proj output vs the float64 reference
	MoEDiff         float64 `json:"moe_calc_diff"`       // shared + routed experts vs the float64 reference
	CalcDiff        float64 `json:"calc_diff"`           // the layer's output vs the float64 reference
	Threshold       float64 `json:"threshold"`
	PartThreshold   float64 `json:"part_threshold"`
	OK              bool    `json:"ok"` // CalcDiff < Threshold, AttnDiff and MoEDiff < PartThreshold, RouterMismatch 0, RouterScoreDiff < RouterScoreTolerance, and for V3.2 Indexer.OK()
	schedule        *pipeline.Schedule
	report          *pipeline.Report
}

func (o *Options) defaults() error {
	set := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	set(&o.Scale, 8)
	set(&o.Batch, 64)
	set(&o.Ranks, 8)
	if o.Prefix == 0 {
		o.prefixDefault = true
	}
	set(&o.Prefix, 256)
	set(&o.PageSize, 64)
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Transport == "" {
		o.Transport = "inproc"
	}
	if o.FSBackend == "" {
		o.FSBackend = "auto"
	}
	switch {
	case o.Model != "" && o.Model != "v3" && o.Model != "v3.2":
		return fmt.Errorf("%w: --model %q must be v3 or v3.2", ErrOptions, o.Model)
	case o.Scale < 1:
		return fmt.Errorf("%w: --scale %d must be ≥ 1", ErrOptions, o.Scale)
	case o.Batch < 1:
		return fmt.Errorf("%w: --batch %d must be ≥ 1", ErrOptions, o.Batch)
	case o.Ranks < 1 || o.Ranks > 64:
		return fmt.Errorf("%w: --ranks %d must be in [1, 64]", ErrOptions, o.Ranks)
	case o.Prefix < 1:
		return fmt.Errorf("%w: --prefix %d must be ≥ 1", ErrOptions, o.Prefix)
	case o.PageSize < 1:
		return fmt.Errorf("%w: page size %d must be ≥ 1", ErrOptions, o.PageSize)
	case o.Transport != "inproc" && !eprank.IsProcess(o.Transport):
		return fmt.Errorf("%w: --transport %q must be inproc, tcp, unix or ucx", ErrOptions, o.Transport)
	case o.FSBackend != "auto" && o.FSBackend != "uring" && o.FSBackend != "posix" && o.FSBackend != "hf3fs" && o.FSBackend != "mem":
		return fmt.Errorf("%w: --fs-backend %q must be auto, uring, posix, hf3fs or mem", ErrOptions, o.FSBackend)
	case o.Layer < 0:
		return fmt.Errorf("%w: --layer %d must be ≥ 0", ErrOptions, o.Layer)
	}
	return nil
}

func fillModel(res *Result, c dsv3.Config, scale int) {
	m := &res.Model
	m.Hidden, m.Experts, m.Heads, m.TopK = c.HiddenSize, c.NRoutedExperts, c.NumAttentionHeads, c.NumExpertsPerTok
	m.Groups, m.TopKGroup, m.MoEInter, m.QLoraRank, m.Scale = c.NGroup, c.TopKGroup, c.MoEIntermediateSize, c.QLoraRank, scale
	m.SoftmaxScale = c.SoftmaxScale()
	if c.IsV32() {
		m.IndexNHeads, m.IndexTopK = c.IndexNHeads, c.IndexTopK
	}
}

// sameExperts reports whether the float64 scores select the same set of
// experts as idx.
func sameExperts(c dsv3.Config, scores []float64, bias []float32, idx []int32) bool {
	s32 := make([]float32, len(scores))
	for i, v := range scores {
		s32[i] = float32(v)
	}
	got := make([]int32, len(idx))
	w := make([]float32, len(idx))
	if dsv3.Route(c, s32, bias, got, w) != nil {
		return false
	}
	a := append([]int32(nil), idx...)
	sort.Slice(a, func(i, j int) bool { return a[i] < a[j] })
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	for i := range a {
		if a[i] != got[i] {
			return false
		}
	}
	return true
}

// simulatePipeline prices a 16-stage DualPipe (32 micro-batches) with this
// run's measured forward time F (µs) and the training profile's ratios
// b ≈ 1.6·F and W ≈ 0.7·F (B = b + W); the overlapped pair costs F + B (a
// CPU hides no communication).
func simulatePipeline(res *Result, fwd time.Duration) error {
	f := max(int64(1), fwd.Microseconds())
	bi, wg := f*16/10, f*7/10
	costs := pipeline.OpCosts{F: f, B: bi + wg, W: wg, FB: f + bi + wg}
	s, err := pipeline.DualPipe(16, 32)
	if err != nil {
		return err
	}
	rep, err := pipeline.Simulate(s, pipeline.SimOptions{Costs: costs})
	if err != nil {
		return err
	}
	p := &res.Pipeline
	p.Stages, p.MicroBatch = 16, 32
	p.F, p.B, p.W, p.FB = costs.F, costs.B, costs.W, costs.FB
	p.Costs = fmt.Sprintf("F=%d,B=%d,W=%d,FB=%d", costs.F, costs.B, costs.W, costs.FB)
	p.Makespan, p.BubbleRatio = rep.Makespan, rep.BubbleRatio
	for _, a := range rep.PeakActivations {
		p.PeakAct = max(p.PeakAct, a)
	}
	res.schedule, res.report = s, rep
	return nil
}

// moeInput is what the MoE step needs from the attention half: every
// token's post-norm hidden state (BF16), its physical top-k slots and
// weights, and which tokens each rank owns (tokens Lo(r) … Lo(r+1)−1).
type moeInput struct {
	Hidden, K, M, NumExperts int
	X                        []tensor.BF16
	TopK                     []int32
	Weights                  []float32
	Lo                       func(rank int) int
	stacks                   []rankExperts
}

// runMoE runs the routed experts on R ranks over the chosen transport and
// returns the combined rows of all tokens in token order.
func runMoE(ctx context.Context, opts Options, in moeInput, be gemm.Backend, stacks []rankExperts) ([]tensor.BF16, []rankStats, error) {
	R := opts.Ranks
	epOpts := ep.Options{LowLatency: &ep.LowLatencyConfig{MaxTokensPerRank: in.M, Hidden: in.Hidden, NumExperts: in.NumExperts, MaxTopK: in.K}}
	out := make([]tensor.BF16, len(in.X))
	stats := make([]rankStats, R)
	perRank := func(ctx context.Context, b *ep.Buffer) error {
		r := b.Rank()
		lo, hi := in.Lo(r), in.Lo(r+1)
		y, s, err := rankMoE(ctx, b, be, stacks[r], in.Hidden, in.X[lo*in.Hidden:hi*in.Hidden], hi-lo,
			in.TopK[lo*in.K:hi*in.K], in.Weights[lo*in.K:hi*in.K], in.K)
		if err != nil {
			return err
		}
		copy(out[lo*in.Hidden:hi*in.Hidden], y)
		stats[r] = s
		return nil
	}
	if opts.Transport == "inproc" {
		if err := inproc.RunBuffers(ctx, R, epOpts, perRank); err != nil {
			return nil, nil, err
		}
		return out, stats, nil
	}
	return runMoEProcesses(ctx, opts, in, epOpts, out, stats, perRank)
}

// memoryNeeded estimates the demo's peak memory in bytes: about 6 bytes
// per FP8 weight of the layer (the weights as read, their fused and
// per-rank stacked copies, and 4 bytes of float32 for the reference;
// measured 5.3× the checkpoint's bytes at --scale 4), plus the prefix
// tokens' hidden states, cache rows and KV cache (at most Batch·Prefix
// tokens), plus the per-token activations and every rank's expert buffers
// (each of the P physical experts has room for all Batch tokens). It is
// 1.3 to 2× the peak resident size measured on runs from 0.1 to 11 GB. Sizes
// that overflow give the largest int64.
func memoryNeeded(cfg dsv3.Config, o Options) int64 {
	var n float64
	for _, s := range append(layerSpecs(cfg, o.Layer), indexerSpecs(cfg, o.Layer)...) {
		n += 6 * float64(s.Out) * float64(s.In)
	}
	hid, d := float64(cfg.HiddenSize), float64(cfg.KVLoraRank+cfg.QKRopeHeadDim)
	b := float64(o.Batch)
	n += b * float64(o.Prefix) * (8*hid + 4*d)    // prefix hidden states, their norm, kv_a_proj rows
	n += b * float64(o.Prefix+o.PageSize) * 2 * d // BF16 KV cache pages
	R := max(o.Ranks, 1)
	P := float64(((cfg.NRoutedExperts+R-1)/R + 1) * R)
	rows := P * float64(o.Batch+R)
	n += rows * (3*hid + 12*float64(cfg.MoEIntermediateSize))
	n += float64(o.Batch) * (60*hid + 8*float64(cfg.NumAttentionHeads)*d + 16*float64(cfg.NRoutedExperts))
	if n >= math.MaxInt64/2 {
		return math.MaxInt64
	}
	return int64(n)
}

// checkOutputDir refuses a --dir that holds anything but a previous demo
// checkpoint: the demo writes config.json and model.safetensors.index.json
// there, which would overwrite a real checkpoint's (say, --dir given where
// --checkpoint was meant).
func checkOutputDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: --dir %s: %w", ErrOptions, dir, err)
	}
	ours := map[string]bool{"config.json": true, "model.safetensors.index.json": true,
		"model-00001-of-00002.safetensors": true, "model-00002-of-00002.safetensors": true}
	for _, e := range ents {
		if !ours[e.Name()] {
			return fmt.Errorf("%w: --dir %s holds %s, which is not from a previous demo run; the demo writes config.json and model.safetensors.index.json there, so give it an empty or new directory (--checkpoint reads an existing one)",
				ErrOptions, dir, e.Name())
		}
	}
	return nil
}
