package demo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/fireflyer-go/fireflyer/cmd/fireflyer/internal/dsv3"
	"github.com/fireflyer-go/fireflyer/eplb"
	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/gemm"
	gemmcpu "github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// A stage is one step of the demo: a named function over the run's shared
// state. Rows are the stage-table rows it adds, in order (none for set-up
// steps that are not timed); the table Run returns is made of exactly these
// rows, stage by stage, and Run fails if a stage adds a row it did not
// declare. A stage with one row may leave the timing to Run, which then
// times the whole call and records the FLOPs and bytes it returns; a stage
// with several rows adds them itself with state.row.
type stage struct {
	name string
	rows func(o *Options) []string
	run  func(ctx context.Context, s *state) (flops, bytes int64, err error)
}

// rows returns a rows function for fixed row names.
func rows(names ...string) func(*Options) []string { return func(*Options) []string { return names } }

// stages is the demo, in order. Tests run variations of it (a stage that
// perturbs a result inserted after the stage producing it) through
// runStages.
var stages = []stage{
	{name: "configure", run: configure},
	{name: "checkpoint: generate", rows: generateRows, run: generateStage},
	{name: "checkpoint: load", rows: rows(rowRead, rowVerify), run: loadStage},
	{name: "inputs", run: inputs},
	{name: "kv cache", rows: cacheRows, run: fillCache},
	{name: "attention", rows: attentionRows, run: attentionStage},
	{name: "indexer", rows: v32Rows(rowIndexerLogits), run: indexerStage},
	{name: "top-k", rows: v32Rows(rowTopK), run: topkStage},
	{name: "sparse attention", rows: v32Rows(rowSparse, rowOProj), run: sparseStage},
	{name: "residual", run: residual},
	{name: "router", rows: rows("router: BF16 gate GEMM + noaux_tc top-k"), run: router},
	{name: "eplb", rows: rows("eplb: loads of a warm-up batch → placement"), run: placeExperts},
	{name: "experts: stack", run: stackStage},
	{name: "shared expert", rows: rows("shared expert (FP8 GEMMs)"), run: sharedExpert},
	{name: "moe", rows: moeRows, run: moeStage},
	{name: "pipeline", rows: rows("pipeline: DualPipe simulation, 16 stages"), run: pipelineStage},
	{name: "reference", rows: rows("reference: float64, single rank"), run: reference},
	{name: "check", run: check},
}

// Row names of the stages that add several rows themselves.
const (
	rowGenerate = "checkpoint: generate weights (seeded, FP8-quantized)"
	rowWrite    = "checkpoint: write shards (safetensors via fs rings)"
	rowRead     = "checkpoint: read shards (fs read rings)"
	rowVerify   = "checkpoint: verify CRC-32C, unpack layer"
	rowProj     = "attention: projections (FP8 GEMM)"
	rowDecode   = "attention: MLA decode (paged, split-KV)"
	rowOProj    = "attention: un-absorb + o_proj (FP8 GEMM)"
	rowCache    = "kv cache: fill prefixes (FP8 kv_a_proj, one GEMM)"
)

func generateRows(o *Options) []string {
	if o.Checkpoint != "" {
		return nil
	}
	return []string{rowGenerate, rowWrite}
}

func moeRows(o *Options) []string {
	return []string{
		fmt.Sprintf("ep: low-latency dispatch, FP8 (%s, %d ranks)", o.Transport, o.Ranks),
		"experts: masked grouped FP8 GEMMs",
		fmt.Sprintf("ep: low-latency combine (%s)", o.Transport),
	}
}

// state is what the stages share: the options, the result being filled, the
// model, its weights, the batch's activations and the stage table.
type state struct {
	opts    Options
	res     *Result
	rows    []Stage  // the stage table so far
	allowed []string // rows the running stage may still add, in order
	cleanup []func()

	cfg     dsv3.Config
	dir     string
	client  *fs.Client
	w       *dsv3.Weights
	be      gemm.Backend
	kvb     *mla.KVB // kv_b_proj for the weight absorption
	rng     *rand.Rand
	mu      []float32 // shared offset of the hidden states
	x       []float32 // the new tokens' hidden states [B, hidden]
	seqlens []int32
	prefix  []int32 // prefix lengths before the step
	cache   *mla.PagedCache
	bt      [][]int32
	attn    []float32 // o_proj output [B, hidden]
	x1, h2  []float32 // residual after attention, its post-attention norm
	idx     []int32   // top-k logical experts [B, K]
	wts     []float32 // their weights [B, K]
	scores  []float32 // router scores [B, E]
	pl      *Placement
	stacks  []rankExperts
	shared  []float32 // shared expert output [B, hidden]
	out     []float32 // layer output [B, hidden]
	moe     []float64 // shared + routed [B, hidden]
	fwd     time.Duration
	refOut  []float64
	refAttn []float64
	refMoE  []float64

	// DeepSeek-V3.2 only
	icache   *gemm.IndexerCache // the lightning indexer's FP8 key cache (same block table)
	xp       []float32          // every prefix token's hidden state, sequence after sequence
	xpStart  []int              // first row of sequence b in xp
	pr       *dsv3.Projected    // the step's projections
	iq       []tensor.E4M3      // indexer queries [B, index_n_heads, 128]
	iw       []float32          // their weights [B, index_n_heads]
	ilogits  []float32          // indexer logits [B, maxLen]
	maxLen   int                // longest context of the step (new token included)
	sel      []int32            // top-k positions [B, index_topk], −1 padded
	sparseIx []int32            // the same as cache token indices (block·page + slot), SparseDecode's indices
	refKeys  []dsv3.IndexKey    // float64 indexer keys of the xp rows
}

// hidden draws n hidden states [n, hidden] around the shared offset.
func (s *state) hidden(n int) []float32 {
	hid := s.cfg.HiddenSize
	x := testutil.Normal(s.rng, n*hid, 0, 1)
	for i := range x {
		x[i] += s.mu[i%hid]
	}
	return x
}

// row adds a row of the stage table; it must be the next row the running
// stage declared.
func (s *state) row(name string, d time.Duration, flops, bytes int64) error {
	if len(s.allowed) == 0 || s.allowed[0] != name {
		return fmt.Errorf("demo: stage added row %q, declared %q", name, s.allowed)
	}
	s.allowed = s.allowed[1:]
	st := Stage{Name: name, Seconds: d.Seconds(), FLOPs: flops, Bytes: bytes}
	if d > 0 {
		st.GFLOPs = float64(flops) / d.Seconds() / 1e9
		st.GBps = float64(bytes) / d.Seconds() / 1e9
	}
	s.rows = append(s.rows, st)
	return nil
}

// Run executes the demo: the stages in order.
func Run(ctx context.Context, opts Options) (*Result, error) { return runStages(ctx, opts, stages) }

// runStages runs a list of stages over a fresh state.
func runStages(ctx context.Context, opts Options, list []stage) (*Result, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	s := &state{opts: opts, res: &Result{Batch: opts.Batch, Ranks: opts.Ranks, Transport: opts.Transport,
		Threshold: Threshold, PartThreshold: PartThreshold, GemmKernel: gemmcpu.Kernel()}}
	defer func() {
		for _, f := range slices.Backward(s.cleanup) {
			f()
		}
	}()
	for _, st := range list {
		var want []string
		if st.rows != nil {
			want = st.rows(&s.opts)
		}
		s.allowed = want
		n := len(s.rows)
		t0 := time.Now()
		flops, bytes, err := st.run(ctx, s)
		if err != nil {
			return nil, err
		}
		if len(want) == 1 && len(s.rows) == n {
			if err := s.row(want[0], time.Since(t0), flops, bytes); err != nil {
				return nil, err
			}
		}
		if len(s.allowed) != 0 {
			return nil, fmt.Errorf("demo: stage %s did not add rows %q", st.name, s.allowed)
		}
	}
	s.res.Stages = s.rows
	return s.res, nil
}

// configure resolves the model config, checks the options against it and
// the machine, and opens the fs client on the checkpoint directory.
func configure(ctx context.Context, s *state) (int64, int64, error) {
	opts := &s.opts
	var cfg dsv3.Config
	dir := opts.Checkpoint
	switch {
	case opts.Config != nil:
		cfg = *opts.Config
	case dir != "":
		c, err := dsv3.LoadConfig(dir + "/config.json")
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) { // absent, or a file
			err = fmt.Errorf("%w: --checkpoint %s: %w", ErrCheckpoint, dir, err)
		}
		if err != nil {
			return 0, 0, err
		}
		cfg = c
	case opts.Model == "v3.2":
		cfg = dsv3.PublishedV32()
	default:
		cfg = dsv3.Published()
	}
	switch {
	case opts.Model == "v3.2" && !cfg.IsV32():
		return 0, 0, fmt.Errorf("%w: --model v3.2, but the config has no index_n_heads, index_head_dim and index_topk (a DeepSeek-V3 config)", ErrOptions)
	case opts.Model == "v3" && cfg.IsV32():
		return 0, 0, fmt.Errorf("%w: --model v3, but the config has DeepSeek-V3.2's index_topk %d (use --model v3.2)", ErrOptions, cfg.IndexTopK)
	}
	opts.Model = "v3"
	if cfg.IsV32() {
		opts.Model = "v3.2"
	}
	if opts.Checkpoint == "" {
		var err error
		if cfg, err = cfg.Scaled(opts.Scale); err != nil {
			return 0, 0, err
		}
	}
	if opts.Layer == 0 {
		opts.Layer = cfg.FirstKDenseReplace
	}
	if opts.Layer < cfg.FirstKDenseReplace {
		return 0, 0, fmt.Errorf("%w: --layer %d is a dense layer (first_k_dense_replace = %d); MoE layers start there", ErrOptions, opts.Layer, cfg.FirstKDenseReplace)
	}
	if cfg.NumHiddenLayers > 0 && opts.Layer >= cfg.NumHiddenLayers {
		return 0, 0, fmt.Errorf("%w: --layer %d is beyond the model's num_hidden_layers = %d (layers %d … %d are MoE layers)", ErrOptions, opts.Layer, cfg.NumHiddenLayers, cfg.FirstKDenseReplace, cfg.NumHiddenLayers-1)
	}
	scale := opts.Scale
	if opts.Checkpoint != "" {
		scale = 0 // the checkpoint's own size; Scale does not apply
	}
	fillModel(s.res, cfg, scale)
	if cfg.IsV32() && opts.prefixDefault {
		opts.Prefix = 2 * cfg.IndexTopK
	}
	maxPos := cfg.MaxPositionEmbeddings
	if maxPos <= 0 || maxPos > 1<<30 {
		maxPos = 1 << 30 // absent from config.json; lengths are int32
	}
	if opts.Prefix >= maxPos {
		return 0, 0, fmt.Errorf("%w: --prefix %d must be below max_position_embeddings %d", ErrOptions, opts.Prefix, maxPos)
	}
	if need, have := memoryNeeded(cfg, *opts), physicalMemory(); have > 0 && need > have {
		return 0, 0, fmt.Errorf("%w: this run (%d experts × hidden %d, --batch %d, --prefix %d) needs about %.1f GB of memory (weights, their copies and the float64 reference's float32 weights, KV cache and activations), this machine has %.1f GB; use a larger --scale or a smaller --batch or --prefix",
			ErrOptions, cfg.NRoutedExperts, cfg.HiddenSize, opts.Batch, opts.Prefix, float64(need)/1e9, float64(have)/1e9)
	}
	if dir == "" {
		dir = opts.Dir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "fireflyer-demo-")
			if err != nil {
				return 0, 0, err
			}
			s.cleanup = append(s.cleanup, func() { os.RemoveAll(tmp) })
			dir = tmp
		} else if err := checkOutputDir(dir); err != nil {
			return 0, 0, err
		} else if err := os.MkdirAll(dir, 0o755); err != nil {
			return 0, 0, err
		}
	}
	client, err := fs.Open(ctx, dir, fs.WithBackend(opts.FSBackend))
	if err != nil {
		return 0, 0, err
	}
	s.cleanup = append(s.cleanup, func() { client.Close() })
	s.cfg, s.dir, s.client = cfg, dir, client
	return 0, 0, nil
}

// progress returns the checkpoint I/O progress callback of a stage.
func (s *state) progress(stage string) func(done, total int64) {
	if s.opts.Progress == nil {
		return nil
	}
	return func(d, t int64) { s.opts.Progress(stage, d, t) }
}

// generateStage writes the seeded checkpoint (unless one is read instead).
func generateStage(ctx context.Context, s *state) (int64, int64, error) {
	if s.opts.Checkpoint != "" {
		return 0, 0, nil
	}
	t0 := time.Now()
	w, err := GenerateCheckpoint(ctx, s.client, s.cfg, s.opts.Layer, s.opts.Seed, s.progress("write"))
	if err != nil {
		return 0, 0, err
	}
	if err := s.row(rowGenerate, time.Since(t0)-w.IO, 0, 0); err != nil {
		return 0, 0, err
	}
	s.res.Written = w
	return 0, 0, s.row(rowWrite, w.IO, 0, w.Bytes)
}

// loadStage reads the layer back, verifying every tensor's checksum.
func loadStage(ctx context.Context, s *state) (int64, int64, error) {
	t0 := time.Now()
	w, rd, err := LoadCheckpoint(ctx, s.client, s.cfg, s.opts.Layer, s.progress("read"))
	if err != nil {
		return 0, 0, err
	}
	if err := s.row(rowRead, rd.IO, 0, rd.Bytes); err != nil {
		return 0, 0, err
	}
	if err := s.row(rowVerify, time.Since(t0)-rd.IO, 0, 0); err != nil {
		return 0, 0, err
	}
	s.res.Read, s.w = rd, w
	return 0, 0, nil
}

// inputs prepares the weight absorption and draws the batch: hidden states
// with a shared offset (so that the router has popular experts, as real ones
// do), prefix lengths, and a paged cache with a shuffled block table and room
// for one more token per sequence.
func inputs(_ context.Context, s *state) (int64, int64, error) {
	s.be = gemm.Backend(gemmcpu.New(gemmcpu.Options{}))
	kvb, err := dsv3.AbsorbKVB(s.cfg, s.w.KVB)
	if err != nil {
		return 0, 0, err
	}
	s.kvb = kvb
	opts := &s.opts
	s.rng = rand.New(rand.NewPCG(opts.Seed, 0xDEC0DE))
	B, hid := opts.Batch, s.cfg.HiddenSize
	s.mu = testutil.Normal(s.rng, hid, 0, 1)
	s.x = s.hidden(B)
	s.seqlens = make([]int32, B)
	for b := range s.seqlens {
		s.seqlens[b] = int32(opts.Prefix/2 + s.rng.IntN(opts.Prefix-opts.Prefix/2+1))
	}
	pages := make([]int, B)
	total := 0
	for b, l := range s.seqlens {
		pages[b] = (int(l) + 1 + opts.PageSize - 1) / opts.PageSize
		total += pages[b]
	}
	if s.cfg.IsV32() {
		// DeepSeek-V3.2 keeps MLA's latent in FlashMLA's FP8 layout and the
		// indexer's keys in DeepGEMM's, both paged by one block table.
		if s.cache, err = mla.NewFP8PagedCache(total, opts.PageSize); err != nil {
			return 0, 0, err
		}
		if s.icache, err = gemm.NewIndexerCache(total, opts.PageSize, s.cfg.IndexHeadDim); err != nil {
			return 0, 0, err
		}
	} else {
		s.cache, err = mla.NewPagedCache(tensor.BF16T, total, opts.PageSize, 1, s.cfg.KVLoraRank+s.cfg.QKRopeHeadDim)
		if err != nil {
			return 0, 0, err
		}
	}
	perm := s.rng.Perm(total)
	s.bt = make([][]int32, B)
	next := 0
	for b := range s.bt {
		for i := 0; i < pages[b]; i++ {
			s.bt[b] = append(s.bt[b], int32(perm[next]))
			next++
		}
	}
	return 0, 0, nil
}

// fillCache runs every prefix token through kv_a_proj as one GEMM and writes
// the cache rows.
func fillCache(ctx context.Context, s *state) (int64, int64, error) {
	seqOf, posOf := []int{}, []int{}
	for b, l := range s.seqlens {
		for p := 0; p < int(l); p++ {
			seqOf, posOf = append(seqOf, b), append(posOf, p)
		}
	}
	xp := s.hidden(len(seqOf))
	ps := s.opts.PageSize
	var flops int64
	xq, err := dsv3.NormQuant(s.cfg, s.w, xp, len(seqOf))
	if err != nil {
		return 0, 0, err
	}
	slot := func(i int) (int, int) { return int(s.bt[seqOf[i]][posOf[i]/ps]), posOf[i] % ps }
	err = dsv3.KVRows(ctx, s.be, s.cfg, s.w, xq, func(i int) int { return posOf[i] }, s.cache, slot, &flops)
	if err != nil {
		return 0, 0, err
	}
	if s.cfg.IsV32() {
		if err := dsv3.IndexerKeys(ctx, s.be, s.cfg, s.w.Indexer, xq, func(i int) int { return posOf[i] }, s.icache, slot, &flops); err != nil {
			return 0, 0, err
		}
		s.xp = xp
		s.xpStart = make([]int, len(s.seqlens))
		for b := 1; b < len(s.seqlens); b++ {
			s.xpStart[b] = s.xpStart[b-1] + int(s.seqlens[b-1])
		}
	}
	s.prefix = append([]int32(nil), s.seqlens...)
	return flops, 0, nil
}

// attentionStage runs the absorbed MLA decode step (three rows); for
// DeepSeek-V3.2 only its projections and the indexer's (two rows), the
// sparse decode following in indexerStage, topkStage and sparseStage.
func attentionStage(ctx context.Context, s *state) (int64, int64, error) {
	if s.cfg.IsV32() {
		return projectV32(ctx, s)
	}
	names := [...]string{dsv3.PhaseProjections: rowProj, dsv3.PhaseDecode: rowDecode, dsv3.PhaseOutput: rowOProj}
	phase := func(p dsv3.AttentionPhase, d time.Duration, flops, bytes int64) error {
		s.fwd += d
		return s.row(names[p], d, flops, bytes)
	}
	attn, err := dsv3.Attention(ctx, s.be, mla.Default(), s.cfg, s.w, s.kvb, s.x, s.cache, s.bt, s.seqlens, phase)
	if err != nil {
		return 0, 0, err
	}
	s.attn = attn
	return 0, 0, nil
}

// residual adds the attention output to the residual stream and applies
// post_attention_layernorm.
func residual(_ context.Context, s *state) (int64, int64, error) {
	s.x1 = make([]float32, len(s.x))
	for i := range s.x1 {
		s.x1[i] = s.x[i] + s.attn[i]
	}
	s.h2 = append([]float32(nil), s.x1...)
	dsv3.RMSNormRows(s.h2, s.cfg.HiddenSize, s.w.PostNorm, s.cfg.RMSNormEps)
	return 0, 0, nil
}

// router runs the BF16 gate GEMM and noaux_tc selection on the batch.
func router(ctx context.Context, s *state) (int64, int64, error) {
	t0 := time.Now()
	idx, wts, scores, rf, err := dsv3.RouteBatch(ctx, s.be, s.cfg, s.w, s.h2, s.opts.Batch)
	if err != nil {
		return 0, 0, err
	}
	s.idx, s.wts, s.scores = idx, wts, scores
	s.fwd += time.Since(t0)
	return rf, 0, nil
}

// placeExperts plans the expert placement with EPLB from the loads of a
// warm-up batch, one redundant slot per rank.
func placeExperts(ctx context.Context, s *state) (int64, int64, error) {
	cfg, B := s.cfg, s.opts.Batch
	E, R := cfg.NRoutedExperts, s.opts.Ranks
	warm := s.hidden(4 * B)
	dsv3.RMSNormRows(warm, cfg.HiddenSize, s.w.PostNorm, cfg.RMSNormEps)
	widx, _, _, _, err := dsv3.RouteBatch(ctx, s.be, cfg, s.w, warm, 4*B)
	if err != nil {
		return 0, 0, err
	}
	loads := make([]float32, E)
	for _, e := range widx {
		loads[e]++
	}
	P := ((E+R-1)/R + 1) * R
	ecfg := eplb.Config{Replicas: P, Groups: cfg.NGroup, Nodes: 1, GPUs: R}
	if E%cfg.NGroup != 0 {
		ecfg.Policy = eplb.Global
	}
	plan, err := eplb.Rebalance([][]float32{loads}, ecfg)
	if err != nil {
		return 0, 0, fmt.Errorf("eplb: %w", err)
	}
	met, err := eplb.Evaluate([][]float32{loads}, plan, ecfg)
	if err != nil {
		return 0, 0, err
	}
	res := s.res
	res.EPLB.Replicas = P
	res.EPLB.ImbalanceBefore, res.EPLB.ImbalanceAfter = met.BaselineImbalance[0], met.Imbalance[0]
	res.EPLB.BalancednessBefore, res.EPLB.BalancednessAfter = 1/met.BaselineImbalance[0], met.Balancedness[0]
	s.pl = &Placement{P: P, R: R, Phy2Log: plan.Phy2Log[0], Log2Phy: make([][]int, E)}
	for e := 0; e < E; e++ {
		for k := 0; k < plan.LogCnt[0][e]; k++ {
			s.pl.Log2Phy[e] = append(s.pl.Log2Phy[e], plan.Log2Phy[0][e][k])
		}
	}
	return 0, 0, nil
}

// stackStage fuses every expert's gate and up projections and stacks the
// experts each rank holds under the placement.
func stackStage(_ context.Context, s *state) (int64, int64, error) {
	fused := make([]*tensor.FP8Matrix, s.cfg.NRoutedExperts)
	for e := range fused {
		var err error
		if fused[e], err = dsv3.FuseGateUp(s.w.ExpGate[e], s.w.ExpUp[e]); err != nil {
			return 0, 0, err
		}
	}
	var err error
	s.stacks, err = stackExperts(s.pl, fused, s.w.ExpDown)
	return 0, 0, err
}

// sharedExpert runs the shared expert as dense FP8 GEMMs.
func sharedExpert(ctx context.Context, s *state) (int64, int64, error) {
	t0 := time.Now()
	shGU, err := dsv3.FuseGateUp(s.w.ShGate, s.w.ShUp)
	if err != nil {
		return 0, 0, err
	}
	var flops int64
	s.shared, err = dsv3.MLP(ctx, s.be, shGU, s.w.ShDown, s.h2, s.opts.Batch, &flops)
	if err != nil {
		return 0, 0, err
	}
	s.fwd += time.Since(t0)
	return flops, 0, nil
}

// moeStage maps every token's experts to physical slots, then dispatches,
// runs the routed experts per rank and combines over the chosen transport
// (three rows).
func moeStage(ctx context.Context, s *state) (int64, int64, error) {
	B, hid := s.opts.Batch, s.cfg.HiddenSize
	E, K, R := s.cfg.NRoutedExperts, s.cfg.NumExpertsPerTok, s.opts.Ranks
	pl := s.pl
	phys := make([]int32, B*K)
	perRankBefore := make([]float64, R)
	perRankAfter := make([]float64, R)
	lo := func(rank int) int { return rank * B / R }
	for rank := 0; rank < R; rank++ {
		for tok := lo(rank); tok < lo(rank+1); tok++ {
			for k := 0; k < K; k++ {
				e := int(s.idx[tok*K+k])
				sl := pl.Replica(e, tok, rank)
				phys[tok*K+k] = int32(sl)
				perRankAfter[sl/pl.Local()]++
				perRankBefore[e*R/E]++
			}
		}
	}
	_, s.res.EPLB.ObservedImbalanceBefore = eplb.Balance(perRankBefore)
	_, s.res.EPLB.ObservedImbalanceAfter = eplb.Balance(perRankAfter)

	h2b := make([]tensor.BF16, len(s.h2))
	tensor.EncodeBF16(h2b, s.h2)
	in := moeInput{Hidden: hid, K: K, M: (B + R - 1) / R, NumExperts: pl.P, X: h2b, TopK: phys, Weights: s.wts, Lo: lo, stacks: s.stacks}
	combined, rstats, err := runMoE(ctx, s.opts, in, s.be, s.stacks)
	if err != nil {
		return 0, 0, err
	}
	// Dispatch and combine are collectives, so the slowest rank's time is
	// the phase's; the expert GEMMs are not (ranks sharing the cores may run
	// them one after another), so their phase is the span from the first
	// rank's start to the last rank's end, and GFLOP/s is all ranks' FLOPs
	// over that span.
	var disp, comb time.Duration
	var dBytes, cBytes, eFlops int64
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for _, st := range rstats {
		disp, comb = max(disp, st.Dispatch), max(comb, st.Combine)
		dBytes += st.DispatchBytes
		cBytes += st.CombineBytes
		eFlops += st.ExpertFLOPs
		first, last = min(first, st.ExpertsStart), max(last, st.ExpertsStart+int64(st.Experts))
	}
	exps := time.Duration(last - first)
	names := moeRows(&s.opts)
	for i, r := range []struct {
		d            time.Duration
		flops, bytes int64
	}{{disp, 0, dBytes}, {exps, eFlops, 0}, {comb, 0, cBytes}} {
		if err := s.row(names[i], r.d, r.flops, r.bytes); err != nil {
			return 0, 0, err
		}
	}
	s.fwd += disp + exps + comb

	s.out = make([]float32, B*hid)
	s.moe = make([]float64, B*hid)
	for i := range s.out {
		m := float64(s.shared[i]) + float64(combined[i].Float32())
		s.moe[i] = m
		s.out[i] = s.x1[i] + float32(m)
	}
	return 0, 0, nil
}

// pipelineStage simulates a 16-stage DualPipe priced with this run's
// forward time.
func pipelineStage(_ context.Context, s *state) (int64, int64, error) {
	return 0, 0, simulatePipeline(s.res, s.fwd)
}

// reference recomputes every token's layer output in float64 on one rank
// (dsv3.Ref) from the same dequantized weights, inputs and cache prefix,
// and checks the router's choice.
func reference(ctx context.Context, s *state) (int64, int64, error) {
	cfg, res := s.cfg, s.res
	B, hid, E, K, ps := s.opts.Batch, cfg.HiddenSize, cfg.NRoutedExperts, cfg.NumExpertsPerTok, s.opts.PageSize
	dq, err := s.w.Dequantized(cfg)
	if err != nil {
		return 0, 0, err
	}
	ref := dsv3.NewReference(cfg, dq)
	row := make([]float32, s.cache.HeadDim)
	var gotLogits, refLogits []float64
	if cfg.IsV32() {
		res.Indexer = &IndexerCheck{Heads: cfg.IndexNHeads, HeadDim: cfg.IndexHeadDim, TopK: cfg.IndexTopK, Threshold: IndexerThreshold}
		if err := referenceKeys(ctx, s, ref); err != nil {
			return 0, 0, err
		}
	}
	for b := 0; b < B; b++ {
		prefix := make([]dsv3.CacheRow, s.prefix[b])
		for p := range prefix {
			s.cache.Row(int(s.bt[b][p/ps]), p%ps, 0, row)
			prefix[p] = testutil.F64(row)
		}
		var r dsv3.RefOutput
		if cfg.IsV32() {
			// The indexer and its top-k are checked against float64; the
			// attention attends to the keys the step chose (so that near-tie
			// flips of the selection do not dominate its calc_diff), densely
			// with every other logit at −Inf.
			referenceIndexer(s, ref, b, res.Indexer, &gotLogits, &refLogits)
			r = ref.TokenSparse(s.x[b*hid:(b+1)*hid], prefix, s.sel[b*cfg.IndexTopK:(b+1)*cfg.IndexTopK], s.idx[b*K:(b+1)*K])
		} else {
			r = ref.Token(s.x[b*hid:(b+1)*hid], prefix, s.idx[b*K:(b+1)*K])
		}
		s.refOut = append(s.refOut, r.Out...)
		s.refAttn = append(s.refAttn, r.Attn...)
		s.refMoE = append(s.refMoE, r.MoE...)
		// does the float64 router choose the same experts?
		if sameExperts(cfg, r.Scores, dq.Bias, s.idx[b*K:(b+1)*K]) {
			res.RouterAgreement++
		}
		// The selection itself, redone from the fast path's own scores and
		// the checkpoint's bias, must match exactly; the scores must match
		// the float64 ones closely.
		if !sameExperts(cfg, testutil.F64(s.scores[b*E:(b+1)*E]), dq.Bias, s.idx[b*K:(b+1)*K]) {
			res.RouterMismatch++
		}
		for e, v := range r.Scores {
			res.RouterScoreDiff = max(res.RouterScoreDiff, math.Abs(float64(s.scores[b*E+e])-v))
		}
	}
	if res.Indexer != nil {
		res.Indexer.CalcDiff = testutil.CalcDiff(gotLogits, refLogits)
	}
	return 0, 0, nil
}

// check compares the layer's output and its two halves with the float64
// reference and sets Result.OK.
func check(_ context.Context, s *state) (int64, int64, error) {
	res, hid := s.res, s.cfg.HiddenSize
	gotAttn := make([]float64, 0, len(s.refAttn))
	gotMoE := make([]float64, 0, len(s.refMoE))
	for b := 0; b < s.opts.Batch; b++ {
		gotAttn = append(gotAttn, testutil.F64(s.attn[b*hid:(b+1)*hid])...)
		gotMoE = append(gotMoE, s.moe[b*hid:(b+1)*hid]...)
	}
	res.CalcDiff = testutil.CalcDiff(testutil.F64(s.out), s.refOut)
	res.AttnDiff = testutil.CalcDiff(gotAttn, s.refAttn)
	res.MoEDiff = testutil.CalcDiff(gotMoE, s.refMoE)
	res.OK = res.CalcDiff < Threshold && res.AttnDiff < PartThreshold && res.MoEDiff < PartThreshold && // false for NaN
		res.RouterMismatch == 0 && res.RouterScoreDiff < RouterScoreTolerance &&
		(res.Indexer == nil || res.Indexer.OK())
	return 0, 0, nil
}
