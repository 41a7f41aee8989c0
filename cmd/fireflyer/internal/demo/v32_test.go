package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/cmd/fireflyer/internal/dsv3"
	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/safetensors"
)

// smallV32 is a small V3.2 run whose every context (80 … 160 prefix
// tokens, plus the new one) is longer than the scaled index_topk of 64.
func smallV32(t *testing.T) Options {
	return Options{Model: "v3.2", Scale: 64, Batch: 6, Ranks: 2, Prefix: 160, PageSize: 16, Seed: 3, Dir: filepath.Join(t.TempDir(), "ckpt")}
}

func checkV32(t *testing.T, r *Result) {
	t.Helper()
	ic := r.Indexer
	if !r.OK || ic == nil || !ic.OK() || ic.CalcDiff <= 0 {
		t.Fatalf("check: ok=%v indexer %+v", r.OK, ic)
	}
	if ic.Sparse != r.Batch || ic.MaxContext <= ic.TopK {
		t.Fatalf("want every token's context longer than top-%d: %d/%d sparse, max context %d", ic.TopK, ic.Sparse, r.Batch, ic.MaxContext)
	}
	var names []string
	for _, s := range r.Stages {
		names = append(names, s.Name)
	}
	for _, w := range []string{rowIndexerProj, rowIndexerLogits, rowTopK, rowSparse, rowOProj, rowCacheV32} {
		if !slices.Contains(names, w) {
			t.Errorf("no stage row %q in %q", w, names)
		}
	}
	if slices.Contains(names, rowDecode) {
		t.Errorf("V3.2 ran the dense decode too: %q", names)
	}
	var buf bytes.Buffer
	PrintTable(&buf, r)
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, "threshold=0.002 ok") {
		t.Fatalf("last line %q", last)
	}
	if !strings.Contains(out, "model: DeepSeek-V3.2 MoE layer") || !strings.Contains(out, "indexer: logits calc_diff=") {
		t.Fatalf("table lacks the V3.2 lines:\n%s", out)
	}
}

// TestDemoV32: the V3.2 step passes its check, every token's selection is
// sparse, and the kept checkpoint (with the indexer's tensors under their
// published names) reads back through --checkpoint with the same answer.
func TestDemoV32(t *testing.T) {
	o := smallV32(t)
	r, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	checkV32(t, r)
	t.Logf("calc_diff %.3g (attention %.3g, moe %.3g), indexer %.3g, top-k agreement %d/%d",
		r.CalcDiff, r.AttnDiff, r.MoEDiff, r.Indexer.CalcDiff, r.Indexer.Agreement, r.Batch)

	c, err := fs.Open(context.Background(), o.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := safetensors.OpenReader(context.Background(), c, "model-00001-of-00002.safetensors", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, _ := dsv3.PublishedV32().Scaled(64)
	for name, shape := range map[string][]int{
		"model.layers.3.self_attn.indexer.wq_b.weight":                 {cfg.IndexNHeads * 128, cfg.QLoraRank},
		"model.layers.3.self_attn.indexer.wq_b.weight_scale_inv":       {cfg.IndexNHeads, cfg.QLoraRank / 128},
		"model.layers.3.self_attn.indexer.wk.weight":                   {128, cfg.HiddenSize},
		"model.layers.3.self_attn.indexer.wk.weight_scale_inv":         {1, cfg.HiddenSize / 128},
		"model.layers.3.self_attn.indexer.k_norm.weight":               {128},
		"model.layers.3.self_attn.indexer.k_norm.bias":                 {128},
		"model.layers.3.self_attn.indexer.weights_proj.weight":         {cfg.IndexNHeads, cfg.HiddenSize},
		"model.layers.3.self_attn.kv_a_proj_with_mqa.weight_scale_inv": {5, cfg.HiddenSize / 128},
	} {
		ti, err := f.Info(name)
		if err != nil || !slices.Equal(ti.Shape, shape) {
			t.Errorf("%s: %v %v, want shape %v", name, ti.Shape, err, shape)
		}
	}
	f.Close()

	o2 := Options{Checkpoint: o.Dir, Batch: o.Batch, Ranks: o.Ranks, Prefix: o.Prefix, PageSize: o.PageSize, Seed: o.Seed}
	r2, err := Run(context.Background(), o2)
	if err != nil {
		t.Fatal(err)
	}
	checkV32(t, r2)
	if r2.CalcDiff != r.CalcDiff || r2.Indexer.CalcDiff != r.Indexer.CalcDiff {
		t.Fatalf("re-read V3.2 checkpoint: calc_diff %v vs %v", r2.CalcDiff, r.CalcDiff)
	}
	// --model v3 on it is refused
	o2.Model = "v3"
	if _, err := Run(context.Background(), o2); !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "--model v3") {
		t.Fatalf("--model v3 on a V3.2 checkpoint: %v", err)
	}
}

// TestDemoV32DefaultPrefix: without --prefix, V3.2 prefixes run up to
// 2·index_topk, so that most contexts are longer than top-k.
func TestDemoV32DefaultPrefix(t *testing.T) {
	r, err := Run(context.Background(), Options{Model: "v3.2", Scale: 64, Batch: 4, Ranks: 2, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.Indexer.MaxContext <= r.Indexer.TopK || r.Indexer.MaxContext > 2*r.Indexer.TopK+1 {
		t.Fatalf("ok=%v, max context %d for top-%d", r.OK, r.Indexer.MaxContext, r.Indexer.TopK)
	}
}

// TestCheckFailsOnWrongV32Stage perturbs the indexer, the top-k or the
// sparse attention and expects the check to fail, each caught by its own
// gate: the indexer's logits calc_diff (and the top-k band), the
// re-selection from the step's own logits, and the attention part.
func TestCheckFailsOnWrongV32Stage(t *testing.T) {
	for _, c := range []struct {
		name  string
		after string
		f     func(s *state)
		gate  string // a line PrintTable must show
	}{
		{"indexer head weights negated", "attention", func(s *state) {
			for i := range s.iw {
				s.iw[i] = -s.iw[i]
			}
		}, "indexer: logits calc_diff="},
		{"top-k keeps its worst key instead of its best", "top-k", func(s *state) {
			k := s.cfg.IndexTopK
			for b := 0; b < s.opts.Batch; b++ {
				row := s.sel[b*k : (b+1)*k]
				lg := s.ilogits[b*s.maxLen : b*s.maxLen+int(s.seqlens[b])]
				worst := int32(0)
				for p, v := range lg {
					if v < lg[worst] {
						worst = int32(p)
					}
				}
				row[0] = worst
				ps := s.opts.PageSize
				s.sparseIx[b*k] = s.bt[b][int(worst)/ps]*int32(ps) + worst%int32(ps)
			}
		}, "top-k:"},
		{"sparse attention reads the neighbouring cache slot", "top-k", func(s *state) {
			// The selection stays; only the indices SparseDecode gets move
			// (a wrong block-table translation).
			n := int32(s.cache.NumBlocks * s.cache.PageSize)
			for i, ix := range s.sparseIx {
				if ix >= 0 {
					s.sparseIx[i] = (ix + 1) % n
				}
			}
		}, "attention: calc_diff="},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := smallV32(t)
			o.Dir = ""
			r, err := runStages(context.Background(), o, perturbAfter(t, c.after, c.f))
			if err != nil {
				t.Fatal(err)
			}
			if r.OK {
				t.Fatalf("check passed with a wrong stage: calc_diff %.3g, attention %.3g, indexer %+v", r.CalcDiff, r.AttnDiff, r.Indexer)
			}
			var buf bytes.Buffer
			PrintTable(&buf, r)
			out := strings.TrimSpace(buf.String())
			if !strings.HasSuffix(out, "threshold=0.002 FAILED") || !strings.Contains(out, c.gate) {
				t.Fatalf("check line does not say FAILED or no %q line:\n%s", c.gate, out)
			}
			t.Logf("calc_diff %.3g, attention %.3g, indexer %.3g, mismatch %d, outside %d", r.CalcDiff, r.AttnDiff, r.Indexer.CalcDiff, r.Indexer.Mismatch, r.Indexer.Outside)
		})
	}
}

func TestBadV32Options(t *testing.T) {
	v3, _ := dsv3.Published().Scaled(64)
	for _, o := range []Options{{Model: "v4"}, {Model: "v3.2", Config: &v3, Scale: 1}} {
		if _, err := Run(context.Background(), o); !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: %v", o.Model, err)
		}
	}
	bad := dsv3.PublishedV32()
	bad.IndexHeadDim = 64
	if _, err := Run(context.Background(), Options{Config: &bad}); !errors.Is(err, dsv3.ErrConfig) {
		t.Errorf("index_head_dim 64: %v", err)
	}
}

// TestStageTableV32: the V3.2 table is made of the rows its stages
// declare, in order: the indexer's stages between the projections and
// o_proj, no dense decode.
func TestStageTableV32(t *testing.T) {
	o := smallV32(t)
	o.Dir = ""
	r, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	_ = o.defaults()
	var want, got []string
	for _, st := range stages {
		if st.rows != nil {
			want = append(want, st.rows(&o)...)
		}
	}
	for _, s := range r.Stages {
		got = append(got, s.Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("stage table rows\n%q\nwant\n%q", got, want)
	}
	i := slices.Index(got, rowProj)
	if i < 0 || !slices.Equal(got[i:i+6], []string{rowProj, rowIndexerProj, rowIndexerLogits, rowTopK, rowSparse, rowOProj}) {
		t.Fatalf("attention rows out of order: %q", got)
	}
}

// TestV32CheckpointMissingIndexer: a V3.2 checkpoint without an indexer
// tensor is refused with ErrCheckpoint naming it.
func TestV32CheckpointMissingIndexer(t *testing.T) {
	o := smallV32(t)
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	ip := filepath.Join(o.Dir, "model.safetensors.index.json")
	b, err := os.ReadFile(ip)
	if err != nil {
		t.Fatal(err)
	}
	var idx map[string]any
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	// the index still maps the tensor, but the shard it names lacks it
	name := "model.layers.3.self_attn.indexer.weights_proj.weight"
	idx["weight_map"].(map[string]any)[name] = "model-00002-of-00002.safetensors"
	b, _ = json.Marshal(idx)
	if err := os.WriteFile(ip, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// rewrite shard 1 without the tensor
	c, err := fs.Open(context.Background(), o.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := safetensors.OpenReader(context.Background(), c, "model-00001-of-00002.safetensors", nil)
	if err != nil {
		t.Fatal(err)
	}
	var keep []safetensors.Entry
	for _, n := range f.Names() {
		if n == name {
			continue
		}
		tt, _, err := f.ReadTensor(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		keep = append(keep, safetensors.Entry{Name: n, Tensor: tt})
	}
	f.Close()
	if err := safetensors.Write(context.Background(), c, "model-00001-of-00002.safetensors", keep, &safetensors.Options{Atomic: true}); err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), Options{Checkpoint: o.Dir, Batch: 2, Ranks: 2, Prefix: 80, PageSize: 16})
	if !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), "weights_proj") {
		t.Fatalf("missing weights_proj: %v", err)
	}
}

// TestDemoV32ShortContexts: contexts no longer than top-k select every key
// (−1 padding the rest), which is dense attention, and still pass.
func TestDemoV32ShortContexts(t *testing.T) {
	o := smallV32(t)
	o.Dir, o.Prefix = "", 40
	r, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.Indexer.Sparse != 0 || r.Indexer.Agreement != r.Batch || r.Indexer.MaxContext > 41 {
		t.Fatalf("ok=%v, indexer %+v", r.OK, r.Indexer)
	}
}
