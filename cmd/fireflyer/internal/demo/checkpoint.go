package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fireflyer-go/fireflyer/cmd/fireflyer/internal/dsv3"
	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/safetensors"
	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// ErrCheckpoint reports a checkpoint that is missing, lacks a tensor or a
// shard, holds a malformed or truncated shard or a tensor of the wrong dtype
// or shape, or fails its checksum.
var ErrCheckpoint = errors.New("demo: bad checkpoint")

// crcPrefix keys the per-tensor CRC-32C checksums the generated checkpoint
// stores in each shard's __metadata__ (real DeepSeek-V3 shards carry none).
const crcPrefix = "fireflyer.crc32c."

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Linear names one FP8 linear layer of the checkpoint: <Name>.weight
// [Out, In] F8_E4M3 and <Name>.weight_scale_inv [ceil(Out/128), ceil(In/128)]
// F32.
type linearSpec struct {
	Name    string
	Out, In int
}

// layerSpecs lists the FP8 linear layers of MoE layer `layer` with their
// shapes, in DeepSeek-V3's names.
func layerSpecs(c dsv3.Config, layer int) []linearSpec {
	p := "model.layers." + strconv.Itoa(layer) + "."
	h, heads := c.HiddenSize, c.NumAttentionHeads
	specs := []linearSpec{
		{p + "self_attn.q_a_proj", c.QLoraRank, h},
		{p + "self_attn.q_b_proj", heads * c.QKHeadDim(), c.QLoraRank},
		{p + "self_attn.kv_a_proj_with_mqa", c.KVLoraRank + c.QKRopeHeadDim, h},
		{p + "self_attn.kv_b_proj", heads * (c.QKNopeHeadDim + c.VHeadDim), c.KVLoraRank},
		{p + "self_attn.o_proj", h, heads * c.VHeadDim},
	}
	inter := c.MoEIntermediateSize
	for j := 0; j < c.NRoutedExperts; j++ {
		e := p + "mlp.experts." + strconv.Itoa(j) + "."
		specs = append(specs, linearSpec{e + "gate_proj", inter, h}, linearSpec{e + "up_proj", inter, h}, linearSpec{e + "down_proj", h, inter})
	}
	sh := inter * max(1, c.NSharedExperts)
	s := p + "mlp.shared_experts."
	return append(specs, linearSpec{s + "gate_proj", sh, h}, linearSpec{s + "up_proj", sh, h}, linearSpec{s + "down_proj", h, sh})
}

// indexerSpecs lists the FP8 linear layers of the layer's lightning indexer
// (DeepSeek-V3.2; none for DeepSeek-V3), in the checkpoint's names:
// self_attn.indexer.wq_b [index_n_heads·index_head_dim, q_lora_rank] and
// self_attn.indexer.wk [index_head_dim, hidden].
func indexerSpecs(c dsv3.Config, layer int) []linearSpec {
	if !c.IsV32() {
		return nil
	}
	p := "model.layers." + strconv.Itoa(layer) + ".self_attn.indexer."
	return []linearSpec{{p + "wq_b", c.IndexNHeads * c.IndexHeadDim, c.QLoraRank}, {p + "wk", c.IndexHeadDim, c.HiddenSize}}
}

// indexerPrefix is the name prefix of layer's indexer tensors.
func indexerPrefix(layer int) string {
	return "model.layers." + strconv.Itoa(layer) + ".self_attn.indexer."
}

// normSpecs lists the BF16 norm vectors of the layer with their lengths.
func normSpecs(c dsv3.Config, layer int) map[string]int {
	p := "model.layers." + strconv.Itoa(layer) + "."
	return map[string]int{
		p + "input_layernorm.weight":          c.HiddenSize,
		p + "post_attention_layernorm.weight": c.HiddenSize,
		p + "self_attn.q_a_layernorm.weight":  c.QLoraRank,
		p + "self_attn.kv_a_layernorm.weight": c.KVLoraRank,
	}
}

// CheckpointStats describes a checkpoint write or read.
type CheckpointStats struct {
	Dir      string   `json:"dir"`
	Files    []string `json:"files"`
	Tensors  int      `json:"tensors"`
	Bytes    int64    `json:"bytes"`
	Verified int      `json:"checksums_verified"` // tensors whose CRC-32C matched
	// IO is the time spent in fs I/O (safetensors.Write or Open).
	IO time.Duration `json:"io_ns"`
}

// GenerateCheckpoint writes MoE layer `layer` of a DeepSeek-V3-shaped model
// with weights drawn from seed into dir, in the published on-disk layout:
// config.json, model.safetensors.index.json and two safetensors shards
// (attention, norms and router in the first; experts in the second), FP8
// E4M3 linear weights with F32 weight_scale_inv per 128×128 block, BF16
// norms and router weight, F32 e_score_correction_bias. Every shard goes
// through c's write rings (safetensors.Write) and records a CRC-32C per
// tensor in its metadata.
func GenerateCheckpoint(ctx context.Context, c *fs.Client, cfg dsv3.Config, layer int, seed uint64, progress func(done, total int64)) (*CheckpointStats, error) {
	r := rand.New(rand.NewPCG(seed, 0xC0FFEE))
	p := "model.layers." + strconv.Itoa(layer) + "."
	shards := [2][]safetensors.Entry{}
	shardOf := func(name string) int {
		if len(name) > len(p)+12 && name[len(p):len(p)+12] == "mlp.experts." {
			return 1
		}
		return 0
	}
	add := func(name string, t *tensor.Tensor) {
		i := shardOf(name)
		shards[i] = append(shards[i], safetensors.Entry{Name: name, Tensor: t})
	}
	for _, s := range append(layerSpecs(cfg, layer), indexerSpecs(cfg, layer)...) {
		w := make([]float32, s.Out*s.In)
		std := 1 / math.Sqrt(float64(s.In))
		for i := range w {
			w[i] = float32(r.NormFloat64() * std)
		}
		q, err := tensor.QuantizePerBlock(w, s.Out, s.In, tensor.QuantOptions{})
		if err != nil {
			return nil, err
		}
		wt, st, err := q.Tensors() // [Out, In] E4M3 and [ceil(Out/128), ceil(In/128)] F32
		if err != nil {
			return nil, err
		}
		add(s.Name+".weight", wt)
		add(s.Name+".weight_scale_inv", st)
	}
	norms := normSpecs(cfg, layer)
	names := make([]string, 0, len(norms))
	for n := range norms {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := make([]tensor.BF16, norms[n])
		for i := range v {
			v[i] = tensor.BF16FromFloat32(float32(1 + 0.1*r.NormFloat64()))
		}
		t, _ := tensor.FromSlice(v, norms[n])
		add(n, t)
	}
	gate := make([]tensor.BF16, cfg.NRoutedExperts*cfg.HiddenSize)
	std := 1 / math.Sqrt(float64(cfg.HiddenSize))
	for i := range gate {
		gate[i] = tensor.BF16FromFloat32(float32(r.NormFloat64() * std))
	}
	gt, _ := tensor.FromSlice(gate, cfg.NRoutedExperts, cfg.HiddenSize)
	add(p+"mlp.gate.weight", gt)
	bias := make([]float32, cfg.NRoutedExperts)
	for i := range bias {
		bias[i] = float32(0.02 * r.NormFloat64())
	}
	bt, _ := tensor.FromSlice(bias, cfg.NRoutedExperts)
	add(p+"mlp.gate.e_score_correction_bias", bt)
	if cfg.IsV32() {
		// The indexer's k_norm (LayerNorm weight and bias over
		// index_head_dim) and weights_proj [index_n_heads, hidden], BF16
		// and not quantized, as in the published checkpoint.
		ip := indexerPrefix(layer)
		bf := func(name string, n int, mean, std float64, shape ...int) {
			v := make([]tensor.BF16, n)
			for i := range v {
				v[i] = tensor.BF16FromFloat32(float32(mean + std*r.NormFloat64()))
			}
			t, _ := tensor.FromSlice(v, shape...)
			add(name, t)
		}
		d := cfg.IndexHeadDim
		bf(ip+"k_norm.weight", d, 1, 0.1, d)
		bf(ip+"k_norm.bias", d, 0, 0.1, d)
		bf(ip+"weights_proj.weight", cfg.IndexNHeads*cfg.HiddenSize, 0, 1/math.Sqrt(float64(cfg.HiddenSize)), cfg.IndexNHeads, cfg.HiddenSize)
	}

	stats := &CheckpointStats{Dir: c.Root()}
	var total int64
	for _, sh := range shards {
		for _, e := range sh {
			total += int64(len(e.Tensor.Data))
		}
	}
	weightMap := map[string]string{}
	var done int64
	for i, sh := range shards {
		file := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		meta := map[string]string{"format": "pt"}
		for _, e := range sh {
			meta[crcPrefix+e.Name] = strconv.FormatUint(uint64(crc32.Checksum(e.Tensor.Data, castagnoli)), 16)
			weightMap[e.Name] = file
			stats.Tensors++
			stats.Bytes += int64(len(e.Tensor.Data))
		}
		t0 := time.Now()
		if err := safetensors.Write(ctx, c, file, sh, &safetensors.Options{Metadata: meta, Atomic: true}); err != nil {
			return nil, fmt.Errorf("demo: writing %s: %w", file, err)
		}
		stats.IO += time.Since(t0)
		stats.Files = append(stats.Files, file)
		for _, e := range sh {
			done += int64(len(e.Tensor.Data))
		}
		if progress != nil {
			progress(done, total)
		}
	}
	index := map[string]any{"metadata": map[string]any{"total_size": stats.Bytes}, "weight_map": weightMap}
	if err := writeJSON(filepath.Join(c.Root(), "model.safetensors.index.json"), index); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(c.Root(), "config.json"), cfg); err != nil {
		return nil, err
	}
	return stats, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// LoadCheckpoint reads MoE layer `layer` from dir through c's read rings:
// it reads model.safetensors.index.json when present (else every
// *.safetensors file), opens the shards holding the layer, checks every
// tensor's dtype and shape against cfg and, where the shard records one,
// its CRC-32C. Only the headers of the shards and the layer's tensors are
// read, each tensor straight into a registered Buffer of c that its Data
// aliases (no copy): the Weights stay valid until c is closed.
func LoadCheckpoint(ctx context.Context, c *fs.Client, cfg dsv3.Config, layer int, progress func(done, total int64)) (*dsv3.Weights, *CheckpointStats, error) {
	dir := c.Root()
	files, err := shardFiles(dir, "model.layers."+strconv.Itoa(layer)+".")
	if err != nil {
		return nil, nil, err
	}
	stats := &CheckpointStats{Dir: dir}
	var opened []*safetensors.Reader
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	where := map[string]*safetensors.Reader{}
	for i, file := range files {
		t0 := time.Now()
		f, err := safetensors.OpenReader(ctx, c, file, nil)
		if err != nil {
			if errors.Is(err, safetensors.ErrFormat) || errors.Is(err, os.ErrNotExist) {
				err = fmt.Errorf("%w: %w", ErrCheckpoint, err) // bad input, not an I/O failure
			}
			return nil, nil, fmt.Errorf("demo: %s: %w", file, err)
		}
		stats.IO += time.Since(t0)
		opened = append(opened, f)
		stats.Files = append(stats.Files, file)
		for _, n := range f.Names() {
			where[n] = f
		}
		if progress != nil {
			progress(int64(i+1), int64(len(files)))
		}
	}
	get := func(name string, dt tensor.DType, shape ...int) (*tensor.Tensor, error) {
		f, ok := where[name]
		if !ok {
			return nil, fmt.Errorf("%w: tensor %s not found in %s", ErrCheckpoint, name, dir)
		}
		ti, err := f.Info(name)
		if err != nil {
			return nil, err
		}
		if ti.DType != dt || !slices.Equal(ti.Shape, shape) {
			return nil, fmt.Errorf("%w: %s is %v %v, want %v %v", ErrCheckpoint, name, ti.DType, ti.Shape, dt, shape)
		}
		t0 := time.Now()
		t, _, err := f.ReadTensor(ctx, name) // the Buffer lives until c closes
		if err != nil {
			return nil, err
		}
		stats.IO += time.Since(t0)
		if want, ok := f.Metadata()[crcPrefix+name]; ok {
			got := strconv.FormatUint(uint64(crc32.Checksum(t.Data, castagnoli)), 16)
			if got != want {
				return nil, fmt.Errorf("%w: %s: CRC-32C %s, the shard recorded %s", ErrCheckpoint, name, got, want)
			}
			stats.Verified++
		}
		stats.Tensors++
		stats.Bytes += int64(len(t.Data))
		return t, nil
	}
	linear := func(s linearSpec) (*tensor.FP8Matrix, error) {
		w, err := get(s.Name+".weight", tensor.E4M3T, s.Out, s.In)
		if err != nil {
			return nil, err
		}
		sc, err := get(s.Name+".weight_scale_inv", tensor.F32, (s.Out+127)/128, (s.In+127)/128)
		if err != nil {
			return nil, err
		}
		return tensor.FP8FromTensors(w, sc) // aliases the registered buffers
	}
	norm := func(name string, n int) ([]float32, error) {
		t, err := get(name, tensor.BF16T, n)
		if err != nil {
			return nil, err
		}
		out := make([]float32, n)
		tensor.DecodeBF16(out, t.BF16s())
		return out, nil
	}
	w := &dsv3.Weights{}
	specs := layerSpecs(cfg, layer)
	mats := make([]*tensor.FP8Matrix, len(specs))
	for i, s := range specs {
		if mats[i], err = linear(s); err != nil {
			return nil, nil, err
		}
	}
	w.QA, w.QB, w.KVA, w.KVB, w.O = mats[0], mats[1], mats[2], mats[3], mats[4]
	for j := 0; j < cfg.NRoutedExperts; j++ {
		w.ExpGate = append(w.ExpGate, mats[5+3*j])
		w.ExpUp = append(w.ExpUp, mats[6+3*j])
		w.ExpDown = append(w.ExpDown, mats[7+3*j])
	}
	n := len(mats)
	w.ShGate, w.ShUp, w.ShDown = mats[n-3], mats[n-2], mats[n-1]
	p := "model.layers." + strconv.Itoa(layer) + "."
	for _, nv := range []struct {
		dst  *[]float32
		name string
		n    int
	}{
		{&w.InputNorm, p + "input_layernorm.weight", cfg.HiddenSize},
		{&w.PostNorm, p + "post_attention_layernorm.weight", cfg.HiddenSize},
		{&w.QANorm, p + "self_attn.q_a_layernorm.weight", cfg.QLoraRank},
		{&w.KVANorm, p + "self_attn.kv_a_layernorm.weight", cfg.KVLoraRank},
	} {
		if *nv.dst, err = norm(nv.name, nv.n); err != nil {
			return nil, nil, err
		}
	}
	// The router weight is BF16 in the published checkpoint; accept F32 too.
	gname := p + "mlp.gate.weight"
	gt, err := get(gname, tensor.BF16T, cfg.NRoutedExperts, cfg.HiddenSize)
	if err != nil {
		g32, err2 := get(gname, tensor.F32, cfg.NRoutedExperts, cfg.HiddenSize)
		if err2 != nil {
			return nil, nil, err
		}
		b := make([]tensor.BF16, len(g32.F32()))
		tensor.EncodeBF16(b, g32.F32())
		gt, _ = tensor.FromSlice(b, cfg.NRoutedExperts, cfg.HiddenSize)
	}
	w.Gate = &gemm.BF16Matrix{Rows: cfg.NRoutedExperts, K: cfg.HiddenSize, Data: tensor.HostOf(gt.BF16s())}
	bt, err := get(p+"mlp.gate.e_score_correction_bias", tensor.F32, cfg.NRoutedExperts)
	if err != nil {
		return nil, nil, err
	}
	w.Bias = bt.F32()
	if cfg.IsV32() {
		if w.Indexer, err = loadIndexer(cfg, layer, linear, get); err != nil {
			return nil, nil, err
		}
	}
	return w, stats, nil
}

// loadIndexer reads the layer's lightning-indexer tensors (DeepSeek-V3.2):
// wq_b and wk (F8_E4M3 with weight_scale_inv), k_norm.weight and
// k_norm.bias and weights_proj.weight (BF16, or F32).
func loadIndexer(cfg dsv3.Config, layer int, linear func(linearSpec) (*tensor.FP8Matrix, error),
	get func(string, tensor.DType, ...int) (*tensor.Tensor, error)) (*dsv3.IndexerWeights, error) {
	iw := &dsv3.IndexerWeights{}
	specs := indexerSpecs(cfg, layer)
	var err error
	if iw.WQB, err = linear(specs[0]); err != nil {
		return nil, err
	}
	if iw.WK, err = linear(specs[1]); err != nil {
		return nil, err
	}
	vec := func(name string, shape ...int) ([]float32, error) {
		t, err := get(name, tensor.BF16T, shape...)
		if err == nil {
			out := make([]float32, len(t.BF16s()))
			tensor.DecodeBF16(out, t.BF16s())
			return out, nil
		}
		t32, err2 := get(name, tensor.F32, shape...)
		if err2 != nil {
			return nil, err
		}
		return append([]float32(nil), t32.F32()...), nil
	}
	ip := indexerPrefix(layer)
	d := cfg.IndexHeadDim
	if iw.KNormW, err = vec(ip+"k_norm.weight", d); err != nil {
		return nil, err
	}
	if iw.KNormB, err = vec(ip+"k_norm.bias", d); err != nil {
		return nil, err
	}
	if iw.WeightsProj, err = vec(ip+"weights_proj.weight", cfg.IndexNHeads, cfg.HiddenSize); err != nil {
		return nil, err
	}
	return iw, nil
}

// shardFiles returns the shard file names of dir that LoadCheckpoint must
// open: the files model.safetensors.index.json's weight_map gives for the
// tensors whose names start with prefix (one layer's, a few of a real
// checkpoint's 163 shards of about 4.3 GB each), or, without an index,
// every *.safetensors file.
func shardFiles(dir, prefix string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "model.safetensors.index.json"))
	if err == nil {
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("%w: model.safetensors.index.json: %v", ErrCheckpoint, err)
		}
		seen := map[string]bool{}
		var files []string
		for name, f := range idx.WeightMap {
			if strings.HasPrefix(name, prefix) && !seen[f] && filepath.Base(f) == f {
				seen[f] = true
				files = append(files, f)
			}
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%w: model.safetensors.index.json in %s maps no tensor named %s*", ErrCheckpoint, dir, prefix)
		}
		sort.Strings(files)
		return files, nil
	}
	m, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if len(m) == 0 {
		return nil, fmt.Errorf("%w: no model.safetensors.index.json and no *.safetensors in %s", ErrCheckpoint, dir)
	}
	var files []string
	for _, f := range m {
		files = append(files, filepath.Base(f))
	}
	sort.Strings(files)
	return files, nil
}
