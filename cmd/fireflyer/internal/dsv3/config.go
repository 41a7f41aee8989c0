package dsv3

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

//go:embed config.json
var publishedConfig []byte

//go:embed config_v32.json
var publishedV32Config []byte

// ErrConfig reports a configuration the demo cannot run.
var ErrConfig = errors.New("dsv3: bad config")

// RopeScaling is config.json's rope_scaling object (YaRN).
type RopeScaling struct {
	Type                          string  `json:"type"`
	Factor                        float64 `json:"factor"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings"`
	BetaFast                      float64 `json:"beta_fast"`
	BetaSlow                      float64 `json:"beta_slow"`
	MScale                        float64 `json:"mscale"`
	MScaleAllDim                  float64 `json:"mscale_all_dim"`
}

// QuantizationConfig is config.json's quantization_config object.
type QuantizationConfig struct {
	QuantMethod      string `json:"quant_method"`
	Fmt              string `json:"fmt"`
	ActivationScheme string `json:"activation_scheme"`
	WeightBlockSize  []int  `json:"weight_block_size"`
}

// Config mirrors DeepSeek-V3's config.json with its real field names.
type Config struct {
	ModelType             string              `json:"model_type"`
	HiddenSize            int                 `json:"hidden_size"`
	IntermediateSize      int                 `json:"intermediate_size"`
	MoEIntermediateSize   int                 `json:"moe_intermediate_size"`
	NumHiddenLayers       int                 `json:"num_hidden_layers"`
	FirstKDenseReplace    int                 `json:"first_k_dense_replace"`
	NRoutedExperts        int                 `json:"n_routed_experts"`
	NSharedExperts        int                 `json:"n_shared_experts"`
	NumExpertsPerTok      int                 `json:"num_experts_per_tok"`
	NGroup                int                 `json:"n_group"`
	TopKGroup             int                 `json:"topk_group"`
	RoutedScalingFactor   float64             `json:"routed_scaling_factor"`
	ScoringFunc           string              `json:"scoring_func"`
	TopKMethod            string              `json:"topk_method"`
	NormTopKProb          bool                `json:"norm_topk_prob"`
	NumAttentionHeads     int                 `json:"num_attention_heads"`
	QLoraRank             int                 `json:"q_lora_rank"`
	KVLoraRank            int                 `json:"kv_lora_rank"`
	QKNopeHeadDim         int                 `json:"qk_nope_head_dim"`
	QKRopeHeadDim         int                 `json:"qk_rope_head_dim"`
	VHeadDim              int                 `json:"v_head_dim"`
	RopeTheta             float64             `json:"rope_theta"`
	RopeScaling           *RopeScaling        `json:"rope_scaling"`
	MaxPositionEmbeddings int                 `json:"max_position_embeddings"`
	RMSNormEps            float64             `json:"rms_norm_eps"`
	VocabSize             int                 `json:"vocab_size"`
	HiddenAct             string              `json:"hidden_act"`
	QuantizationConfig    *QuantizationConfig `json:"quantization_config"`
	// DeepSeek-V3.2's lightning indexer (absent, zero, in DeepSeek-V3):
	// index_n_heads (64), index_head_dim (128) and index_topk (2048), the
	// keys each query's sparse attention keeps.
	IndexNHeads  int `json:"index_n_heads,omitempty"`
	IndexHeadDim int `json:"index_head_dim,omitempty"`
	IndexTopK    int `json:"index_topk,omitempty"`
}

// Published returns DeepSeek-V3's published configuration (embedded copy of
// its config.json).
func Published() Config {
	c, err := ParseConfig(publishedConfig)
	if err != nil {
		panic("dsv3: embedded config.json: " + err.Error())
	}
	return c
}

// PublishedV32 returns DeepSeek-V3.2-Exp's configuration (embedded copy of
// its config.json): DeepSeek-V3's with model_type "deepseek_v32" and the
// lightning indexer's index_n_heads 64, index_head_dim 128 and index_topk
// 2048.
func PublishedV32() Config {
	c, err := ParseConfig(publishedV32Config)
	if err != nil {
		panic("dsv3: embedded config_v32.json: " + err.Error())
	}
	return c
}

// IsV32 reports whether c has DeepSeek-V3.2's lightning indexer
// (index_topk > 0): its attention is sparse, over the top-index_topk keys.
func (c Config) IsV32() bool { return c.IndexTopK > 0 || c.IndexNHeads > 0 || c.IndexHeadDim > 0 }

// IndexerSoftmaxScale returns index_head_dim^−0.5, the indexer's
// softmax_scale (inference/model.py Indexer; no YaRN mscale).
func (c Config) IndexerSoftmaxScale() float64 { return 1 / math.Sqrt(float64(c.IndexHeadDim)) }

// MaxConfigBytes bounds a config.json LoadConfig reads (the published one
// is under 2 KB), so that a path such as /dev/zero is refused instead of
// read until memory runs out.
const MaxConfigBytes = 1 << 20

// LoadConfig reads and validates a config.json file. A file longer than
// MaxConfigBytes is ErrConfig.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return Config{}, err
	}
	if len(b) > MaxConfigBytes {
		return Config{}, fmt.Errorf("%w: %s is larger than %d bytes", ErrConfig, path, MaxConfigBytes)
	}
	return ParseConfig(b)
}

// ParseConfig decodes and validates config.json bytes.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return c, c.Validate()
}

// Validate checks what the demo relies on: MLA dims 512+64, sigmoid noaux_tc
// routing, experts divisible into groups of at least two, topk_group groups
// holding at least top-k experts, positive widths, moe_intermediate_size a
// multiple of 128, first_k_dense_replace ≥ 0 and a positive
// routed_scaling_factor.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...)
	}
	switch {
	case c.HiddenSize <= 0 || c.MoEIntermediateSize <= 0 || c.QLoraRank <= 0 || c.NumAttentionHeads <= 0:
		return bad("hidden_size, moe_intermediate_size, q_lora_rank and num_attention_heads must be positive")
	case c.KVLoraRank+c.QKRopeHeadDim != 576 || c.KVLoraRank != 512:
		return bad("kv_lora_rank %d + qk_rope_head_dim %d must be 512 + 64 (FlashMLA's 576/512)", c.KVLoraRank, c.QKRopeHeadDim)
	case c.QKNopeHeadDim <= 0 || c.VHeadDim <= 0 || c.QKRopeHeadDim%2 != 0:
		return bad("qk_nope_head_dim and v_head_dim must be positive and qk_rope_head_dim even")
	case c.ScoringFunc != "sigmoid" || c.TopKMethod != "noaux_tc":
		return bad("scoring_func %q / topk_method %q: only sigmoid / noaux_tc is supported", c.ScoringFunc, c.TopKMethod)
	case c.NGroup <= 0 || c.NRoutedExperts%c.NGroup != 0 || c.NRoutedExperts/c.NGroup < 2:
		return bad("n_routed_experts %d must split into n_group %d groups of at least 2", c.NRoutedExperts, c.NGroup)
	case c.TopKGroup <= 0 || c.TopKGroup > c.NGroup:
		return bad("topk_group %d must be in [1, n_group %d]", c.TopKGroup, c.NGroup)
	case c.NumExpertsPerTok <= 0 || c.NumExpertsPerTok > c.TopKGroup*(c.NRoutedExperts/c.NGroup):
		return bad("num_experts_per_tok %d must be in [1, topk_group × experts per group]", c.NumExpertsPerTok)
	case c.MoEIntermediateSize%128 != 0:
		return bad("moe_intermediate_size %d must be a multiple of 128 (gate and up are fused along 128-row FP8 scale blocks)", c.MoEIntermediateSize)
	case c.FirstKDenseReplace < 0:
		return bad("first_k_dense_replace %d must be ≥ 0", c.FirstKDenseReplace)
	case !(c.RoutedScalingFactor > 0) || math.IsInf(c.RoutedScalingFactor, 0):
		return bad("routed_scaling_factor %v must be positive and finite (absent, it would silence every routed expert)", c.RoutedScalingFactor)
	case c.NSharedExperts < 0 || c.RMSNormEps <= 0 || c.RopeTheta <= 0:
		return bad("n_shared_experts, rms_norm_eps and rope_theta out of range")
	}
	if !c.IsV32() {
		return nil
	}
	switch {
	case c.IndexNHeads <= 0 || c.IndexNHeads > 1<<10:
		return bad("index_n_heads %d must be in [1, 1024]", c.IndexNHeads)
	case c.IndexHeadDim != 128:
		return bad("index_head_dim %d must be 128 (one 128-point Hadamard rotation and one act_quant block per head)", c.IndexHeadDim)
	case c.IndexHeadDim <= c.QKRopeHeadDim:
		return bad("index_head_dim %d must exceed qk_rope_head_dim %d (the indexer ropes its first qk_rope_head_dim channels)", c.IndexHeadDim, c.QKRopeHeadDim)
	case c.IndexTopK <= 0 || c.IndexTopK > 1<<20:
		return bad("index_topk %d must be in [1, 2^20]", c.IndexTopK)
	}
	return nil
}

// Scaled returns c shrunk by div to fit a laptop: hidden_size,
// moe_intermediate_size, q_lora_rank and intermediate_size divided by div and
// rounded up to a multiple of 128 (the FP8 block); n_routed_experts and
// num_attention_heads divided by div but kept at ≥ 2 per group and ≥ 1 head.
// Kept as published: n_group, topk_group, num_experts_per_tok, the routing
// rule and scaling factor, and the MLA head dims (576 = 512 + 64, nope 128,
// v 128). A V3.2 config also keeps index_head_dim (128) and divides
// index_n_heads by div (≥ 1) and index_topk by div, rounded down to a
// multiple of 64 (FlashMLA's SM90 granule) and kept ≥ 64. div = 1 returns
// c unchanged.
func (c Config) Scaled(div int) (Config, error) {
	if div < 1 {
		return Config{}, fmt.Errorf("%w: scale %d must be ≥ 1", ErrConfig, div)
	}
	if div == 1 {
		return c, c.Validate()
	}
	round := func(v int) int { return max(128, (v/div+127)/128*128) }
	s := c
	s.HiddenSize = round(c.HiddenSize)
	s.MoEIntermediateSize = round(c.MoEIntermediateSize)
	s.IntermediateSize = round(c.IntermediateSize)
	s.QLoraRank = round(c.QLoraRank)
	perGroup := max(2, c.NRoutedExperts/c.NGroup/div)
	s.NRoutedExperts = perGroup * c.NGroup
	s.NumAttentionHeads = max(1, c.NumAttentionHeads/div)
	if c.IsV32() {
		s.IndexNHeads = max(1, c.IndexNHeads/div)
		s.IndexTopK = max(64, c.IndexTopK/div/64*64)
	}
	return s, s.Validate()
}

// QKHeadDim returns qk_nope_head_dim + qk_rope_head_dim (192 in DeepSeek-V3).
func (c Config) QKHeadDim() int { return c.QKNopeHeadDim + c.QKRopeHeadDim }

// MScale returns YaRN's attention scale factor 0.1·mscale_all_dim·ln(factor)
// + 1 (1 without rope_scaling or for factor ≤ 1).
func (c Config) MScale() float64 {
	if c.RopeScaling == nil || c.RopeScaling.Factor <= 1 {
		return 1
	}
	return 0.1*c.RopeScaling.MScaleAllDim*math.Log(c.RopeScaling.Factor) + 1
}

// SoftmaxScale returns the model's attention scale,
// (qk_nope_head_dim + qk_rope_head_dim)^−0.5 · mscale² ≈ 0.13524 for
// DeepSeek-V3 (inference/model.py applies mscale² when max_seq_len exceeds
// the original 4096 positions, as it does in deployment).
func (c Config) SoftmaxScale() float64 {
	m := c.MScale()
	return m * m / math.Sqrt(float64(c.QKHeadDim()))
}
