package demo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"time"

	"github.com/fireflyer-go/fireflyer/cmd/fireflyer/internal/dsv3"
	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
	"github.com/fireflyer-go/fireflyer/eplb"
	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/gemm"
	gemmcpu "github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
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

// testPerturb, set only by tests, alters a stage's result in place
// ("attention": o_proj output [B, hidden]; "weights": routing weights
// [B, top-k]) to show that the check fails when a stage is wrong.
var testPerturb func(stage string, v []float32)

// ErrOptions reports demo options that cannot run.
var ErrOptions = errors.New("demo: bad options")

// Options configure Run. The zero value of a field means its default.
type Options struct {
	Config     *dsv3.Config // nil: DeepSeek-V3's published config (or the checkpoint's config.json)
	Scale      int          // shrink factor for widths and expert counts of the generated checkpoint (default 8; 1 = full size; not used with Checkpoint)
	Batch      int          // sequences decoded (default 64)
	Ranks      int          // expert-parallel ranks (default 8)
	Transport  string       // "inproc" (default), "tcp" or "unix"
	Prefix     int          // longest prefix in the KV cache (default 256); sequence b holds Prefix/2 … Prefix tokens
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
	} `json:"model"`
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
	OK              bool    `json:"ok"` // CalcDiff < Threshold, AttnDiff and MoEDiff < PartThreshold, RouterMismatch 0, RouterScoreDiff < RouterScoreTolerance
	schedule        *pipeline.Schedule
	report          *pipeline.Report
}

// stageTimes collects stage rows.
type stageTimes struct{ rows []Stage }

type stageTimer struct {
	name string
	t0   time.Time
}

func (s *stageTimes) start(name string) stageTimer { return stageTimer{name, time.Now()} }

func (s *stageTimes) stop(t stageTimer, flops, bytes int64) {
	s.add(t.name, time.Since(t.t0), flops, bytes)
}

func (s *stageTimes) add(name string, d time.Duration, flops, bytes int64) {
	st := Stage{Name: name, Seconds: d.Seconds(), FLOPs: flops, Bytes: bytes}
	if d > 0 {
		st.GFLOPs = float64(flops) / d.Seconds() / 1e9
		st.GBps = float64(bytes) / d.Seconds() / 1e9
	}
	s.rows = append(s.rows, st)
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
	case o.Transport != "inproc" && o.Transport != "tcp" && o.Transport != "unix":
		return fmt.Errorf("%w: --transport %q must be inproc, tcp or unix", ErrOptions, o.Transport)
	case o.FSBackend != "auto" && o.FSBackend != "uring" && o.FSBackend != "posix" && o.FSBackend != "hf3fs" && o.FSBackend != "mem":
		return fmt.Errorf("%w: --fs-backend %q must be auto, uring, posix, hf3fs or mem", ErrOptions, o.FSBackend)
	case o.Layer < 0:
		return fmt.Errorf("%w: --layer %d must be ≥ 0", ErrOptions, o.Layer)
	}
	return nil
}

// Run executes the demo.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	res := &Result{Batch: opts.Batch, Ranks: opts.Ranks, Transport: opts.Transport, Threshold: Threshold, PartThreshold: PartThreshold, GemmKernel: gemmcpu.Kernel()}
	st := &stageTimes{}
	progress := func(stage string) func(done, total int64) {
		if opts.Progress == nil {
			return nil
		}
		return func(d, t int64) { opts.Progress(stage, d, t) }
	}

	// Configuration and checkpoint.
	var cfg dsv3.Config
	dir := opts.Checkpoint
	switch {
	case opts.Config != nil:
		cfg = *opts.Config
	case dir != "":
		c, err := dsv3.LoadConfig(dir + "/config.json")
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w: --checkpoint %s: %w", ErrCheckpoint, dir, err)
		}
		if err != nil {
			return nil, err
		}
		cfg = c
	default:
		cfg = dsv3.Published()
	}
	if opts.Checkpoint == "" {
		var err error
		if cfg, err = cfg.Scaled(opts.Scale); err != nil {
			return nil, err
		}
	}
	if opts.Layer == 0 {
		opts.Layer = cfg.FirstKDenseReplace
	}
	if opts.Layer < cfg.FirstKDenseReplace {
		return nil, fmt.Errorf("%w: --layer %d is a dense layer (first_k_dense_replace = %d); MoE layers start there", ErrOptions, opts.Layer, cfg.FirstKDenseReplace)
	}
	scale := opts.Scale
	if opts.Checkpoint != "" {
		scale = 0 // the checkpoint's own size; Scale does not apply
	}
	fillModel(res, cfg, scale)
	maxPos := cfg.MaxPositionEmbeddings
	if maxPos <= 0 || maxPos > 1<<30 {
		maxPos = 1 << 30 // absent from config.json; lengths are int32
	}
	if opts.Prefix >= maxPos {
		return nil, fmt.Errorf("%w: --prefix %d must be below max_position_embeddings %d", ErrOptions, opts.Prefix, maxPos)
	}
	if need, have := memoryNeeded(cfg, opts), physicalMemory(); have > 0 && need > have {
		return nil, fmt.Errorf("%w: this run (%d experts × hidden %d, --batch %d, --prefix %d) needs about %.1f GB of memory (weights, their copies and the float64 reference's float32 weights, KV cache and activations), this machine has %.1f GB; use a larger --scale or a smaller --batch or --prefix",
			ErrOptions, cfg.NRoutedExperts, cfg.HiddenSize, opts.Batch, opts.Prefix, float64(need)/1e9, float64(have)/1e9)
	}
	if dir == "" {
		dir = opts.Dir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "fireflyer-demo-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		} else if err := checkOutputDir(dir); err != nil {
			return nil, err
		} else if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	client, err := fs.Open(ctx, dir, fs.WithBackend(opts.FSBackend))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	if opts.Checkpoint == "" {
		t0 := time.Now()
		w, err := GenerateCheckpoint(ctx, client, cfg, opts.Layer, opts.Seed, progress("write"))
		if err != nil {
			return nil, err
		}
		st.add("checkpoint: generate weights (seeded, FP8-quantized)", time.Since(t0)-w.IO, 0, 0)
		st.add("checkpoint: write shards (safetensors via fs rings)", w.IO, 0, w.Bytes)
		res.Written = w
	}
	t0 := time.Now()
	w, rd, err := LoadCheckpoint(ctx, client, cfg, opts.Layer, progress("read"))
	if err != nil {
		return nil, err
	}
	st.add("checkpoint: read shards (fs read rings)", rd.IO, 0, rd.Bytes)
	st.add("checkpoint: verify CRC-32C, unpack layer", time.Since(t0)-rd.IO, 0, 0)
	res.Read = rd

	be := gemm.Backend(gemmcpu.New())
	ab, err := absorb(cfg, w.KVB)
	if err != nil {
		return nil, err
	}

	// Inputs: hidden states with a shared offset (so that the router has
	// popular experts, as real ones do) and prefix lengths.
	r := rand.New(rand.NewPCG(opts.Seed, 0xDEC0DE))
	B, hid := opts.Batch, cfg.HiddenSize
	mu := testutil.Normal(r, hid, 0, 1)
	hidden := func(n int) []float32 {
		x := testutil.Normal(r, n*hid, 0, 1)
		for i := range x {
			x[i] += mu[i%hid]
		}
		return x
	}
	x := hidden(B)
	seqlens := make([]int32, B)
	for b := range seqlens {
		seqlens[b] = int32(opts.Prefix/2 + r.IntN(opts.Prefix-opts.Prefix/2+1))
	}
	// Paged cache with a shuffled block table, room for one more token.
	pages := make([]int, B)
	total := 0
	for b, l := range seqlens {
		pages[b] = (int(l) + 1 + opts.PageSize - 1) / opts.PageSize
		total += pages[b]
	}
	cache, err := mla.NewPagedCache(tensor.BF16T, total, opts.PageSize, 1, cfg.KVLoraRank+cfg.QKRopeHeadDim)
	if err != nil {
		return nil, err
	}
	perm := r.Perm(total)
	bt := make([][]int32, B)
	next := 0
	for b := range bt {
		for i := 0; i < pages[b]; i++ {
			bt[b] = append(bt[b], int32(perm[next]))
			next++
		}
	}

	// All prefix tokens go through kv_a_proj as one GEMM.
	seqOf, posOf := []int{}, []int{}
	for b, l := range seqlens {
		for p := 0; p < int(l); p++ {
			seqOf, posOf = append(seqOf, b), append(posOf, p)
		}
	}
	xp := hidden(len(seqOf))
	t := st.start("kv cache: fill prefixes (FP8 kv_a_proj, one GEMM)")
	var flops int64
	xq, err := normQuant(cfg, w, xp, len(seqOf))
	if err != nil {
		return nil, err
	}
	err = kvRows(ctx, be, cfg, w, xq, func(i int) int { return posOf[i] }, cache,
		func(i int) (int, int) { return int(bt[seqOf[i]][posOf[i]/opts.PageSize]), posOf[i] % opts.PageSize }, &flops)
	if err != nil {
		return nil, err
	}
	st.stop(t, flops, 0)
	prefixLen := append([]int32(nil), seqlens...)

	// 1. attention
	tFwd := time.Now()
	attn, err := attention(ctx, be, mla.Default(), cfg, w, ab, x, cache, bt, seqlens, st)
	if err != nil {
		return nil, err
	}
	if testPerturb != nil {
		testPerturb("attention", attn)
	}
	x1 := make([]float32, len(x))
	for i := range x1 {
		x1[i] = x[i] + attn[i]
	}
	h2 := append([]float32(nil), x1...)
	rmsNormRows(h2, hid, w.PostNorm, cfg.RMSNormEps)

	// 2. router
	t = st.start("router: BF16 gate GEMM + noaux_tc top-k")
	idx, wts, scores, rf, err := route(ctx, be, cfg, w, h2, B)
	if err != nil {
		return nil, err
	}
	st.stop(t, rf, 0)
	fwdSoFar := time.Since(tFwd)

	// 3. EPLB from a warm-up batch's loads
	t = st.start("eplb: loads of a warm-up batch → placement")
	E, K, R := cfg.NRoutedExperts, cfg.NumExpertsPerTok, opts.Ranks
	warm := hidden(4 * B)
	rmsNormRows(warm, hid, w.PostNorm, cfg.RMSNormEps)
	widx, _, _, _, err := route(ctx, be, cfg, w, warm, 4*B)
	if err != nil {
		return nil, err
	}
	loads := make([]float32, E)
	for _, e := range widx {
		loads[e]++
	}
	P := ((E+R-1)/R + 1) * R // one redundant slot per rank
	ecfg := eplb.Config{Replicas: P, Groups: cfg.NGroup, Nodes: 1, GPUs: R}
	if E%cfg.NGroup != 0 {
		ecfg.Policy = eplb.Global
	}
	plan, err := eplb.Rebalance([][]float32{loads}, ecfg)
	if err != nil {
		return nil, fmt.Errorf("eplb: %w", err)
	}
	met, err := eplb.Evaluate([][]float32{loads}, plan, ecfg)
	if err != nil {
		return nil, err
	}
	st.stop(t, 0, 0)
	res.EPLB.Replicas = P
	res.EPLB.ImbalanceBefore, res.EPLB.ImbalanceAfter = met.BaselineImbalance[0], met.Imbalance[0]
	res.EPLB.BalancednessBefore, res.EPLB.BalancednessAfter = 1/met.BaselineImbalance[0], met.Balancedness[0]
	pl := &Placement{P: P, R: R, Phy2Log: plan.Phy2Log[0], Log2Phy: make([][]int, E)}
	for e := 0; e < E; e++ {
		for k := 0; k < plan.LogCnt[0][e]; k++ {
			pl.Log2Phy[e] = append(pl.Log2Phy[e], plan.Log2Phy[0][e][k])
		}
	}

	// 4-6. shared expert, dispatch, experts, combine
	fused := make([]*gemm.FP8Matrix, E)
	for e := range fused {
		if fused[e], err = fuseGateUp(w.ExpGate[e], w.ExpUp[e]); err != nil {
			return nil, err
		}
	}
	stacks, err := stackExperts(pl, fused, w.ExpDown)
	if err != nil {
		return nil, err
	}
	t = st.start("shared expert (FP8 GEMMs)")
	shGU, err := fuseGateUp(w.ShGate, w.ShUp)
	if err != nil {
		return nil, err
	}
	flops = 0
	shared, err := mlp(ctx, be, shGU, w.ShDown, h2, B, &flops)
	if err != nil {
		return nil, err
	}
	st.stop(t, flops, 0)
	fwdSoFar += st.rows[len(st.rows)-1].duration()

	phys := make([]int32, B*K)
	perRankBefore := make([]float64, R)
	perRankAfter := make([]float64, R)
	lo := func(rank int) int { return rank * B / R }
	for rank := 0; rank < R; rank++ {
		for tok := lo(rank); tok < lo(rank+1); tok++ {
			for k := 0; k < K; k++ {
				e := int(idx[tok*K+k])
				s := pl.Replica(e, tok, rank)
				phys[tok*K+k] = int32(s)
				perRankAfter[s/pl.Local()]++
				perRankBefore[e*R/E]++
			}
		}
	}
	res.EPLB.ObservedImbalanceBefore = imbalance(perRankBefore)
	res.EPLB.ObservedImbalanceAfter = imbalance(perRankAfter)

	if testPerturb != nil {
		testPerturb("weights", wts)
		testPerturb("bias", w.Bias) // after routing: changes only the check's re-selection
	}
	h2b := make([]tensor.BF16, len(h2))
	tensor.EncodeBF16(h2b, h2)
	in := moeInput{Hidden: hid, K: K, M: (B + R - 1) / R, NumExperts: P, X: h2b, TopK: phys, Weights: wts, Lo: lo, stacks: stacks}
	combined, rstats, err := runMoE(ctx, opts, in, be, stacks)
	if err != nil {
		return nil, err
	}
	// Dispatch and combine are collectives, so the slowest rank's time is
	// the phase's; the expert GEMMs are not (ranks sharing the cores may run
	// them one after another), so their phase is the span from the first
	// rank's start to the last rank's end, and GFLOP/s is all ranks' FLOPs
	// over that span.
	var disp, comb time.Duration
	var dBytes, cBytes, eFlops int64
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for _, s := range rstats {
		disp, comb = max(disp, s.Dispatch), max(comb, s.Combine)
		dBytes += s.DispatchBytes
		cBytes += s.CombineBytes
		eFlops += s.ExpertFLOPs
		first, last = min(first, s.ExpertsStart), max(last, s.ExpertsStart+int64(s.Experts))
	}
	exps := time.Duration(last - first)
	st.add(fmt.Sprintf("ep: low-latency dispatch, FP8 (%s, %d ranks)", opts.Transport, R), disp, 0, dBytes)
	st.add("experts: masked grouped FP8 GEMMs", exps, eFlops, 0)
	st.add(fmt.Sprintf("ep: low-latency combine (%s)", opts.Transport), comb, 0, cBytes)
	fwdSoFar += disp + exps + comb

	out := make([]float32, B*hid)
	moe := make([]float64, B*hid)
	for i := range out {
		m := float64(shared[i]) + float64(combined[i].Float32())
		moe[i] = m
		out[i] = x1[i] + float32(m)
	}

	// 7. pipeline simulation priced with this run's forward time
	t = st.start("pipeline: DualPipe simulation, 16 stages")
	if err := simulatePipeline(res, fwdSoFar); err != nil {
		return nil, err
	}
	st.stop(t, 0, 0)

	// Check against the float64 reference.
	t = st.start("reference: float64, single rank")
	dq, err := w.Dequantized(cfg)
	if err != nil {
		return nil, err
	}
	var refOut, refAttn, refMoE, gotAttn, gotMoE []float64
	row := make([]float32, cache.HeadDim)
	for b := 0; b < B; b++ {
		prefix := make([]dsv3.CacheRow, prefixLen[b])
		for p := range prefix {
			cache.Row(int(bt[b][p/opts.PageSize]), p%opts.PageSize, 0, row)
			prefix[p] = testutil.F64(row)
		}
		ref := dsv3.Reference(cfg, dq, x[b*hid:(b+1)*hid], prefix, idx[b*K:(b+1)*K])
		refOut = append(refOut, ref.Out...)
		refAttn = append(refAttn, ref.Attn...)
		refMoE = append(refMoE, ref.MoE...)
		gotAttn = append(gotAttn, testutil.F64(attn[b*hid:(b+1)*hid])...)
		gotMoE = append(gotMoE, moe[b*hid:(b+1)*hid]...)
		// does the float64 router choose the same experts?
		same := sameExperts(cfg, ref.Scores, dq.Bias, idx[b*K:(b+1)*K])
		if same {
			res.RouterAgreement++
		}
		// The selection itself, redone from the fast path's own scores and
		// the checkpoint's bias, must match exactly; the scores must match
		// the float64 ones closely.
		if !sameExperts(cfg, testutil.F64(scores[b*E:(b+1)*E]), dq.Bias, idx[b*K:(b+1)*K]) {
			res.RouterMismatch++
		}
		for e, v := range ref.Scores {
			res.RouterScoreDiff = max(res.RouterScoreDiff, math.Abs(float64(scores[b*E+e])-v))
		}
	}
	st.stop(t, 0, 0)
	res.CalcDiff = testutil.CalcDiff(testutil.F64(out), refOut)
	res.AttnDiff = testutil.CalcDiff(gotAttn, refAttn)
	res.MoEDiff = testutil.CalcDiff(gotMoE, refMoE)
	res.OK = res.CalcDiff < Threshold && res.AttnDiff < PartThreshold && res.MoEDiff < PartThreshold && // false for NaN
		res.RouterMismatch == 0 && res.RouterScoreDiff < RouterScoreTolerance
	res.Stages = st.rows
	return res, nil
}

func (s Stage) duration() time.Duration { return time.Duration(s.Seconds * float64(time.Second)) }

func fillModel(res *Result, c dsv3.Config, scale int) {
	m := &res.Model
	m.Hidden, m.Experts, m.Heads, m.TopK = c.HiddenSize, c.NRoutedExperts, c.NumAttentionHeads, c.NumExpertsPerTok
	m.Groups, m.TopKGroup, m.MoEInter, m.QLoraRank, m.Scale = c.NGroup, c.TopKGroup, c.MoEIntermediateSize, c.QLoraRank, scale
	m.SoftmaxScale = c.SoftmaxScale()
}

func imbalance(v []float64) float64 {
	var s, mx float64
	for _, x := range v {
		s += x
		mx = max(mx, x)
	}
	if s == 0 {
		return 1
	}
	return mx / (s / float64(len(v)))
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
	for _, s := range layerSpecs(cfg, o.Layer) {
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
