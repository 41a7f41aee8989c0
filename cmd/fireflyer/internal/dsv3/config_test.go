package dsv3

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestPublished(t *testing.T) {
	c := Published()
	if c.HiddenSize != 7168 || c.NRoutedExperts != 256 || c.NumExpertsPerTok != 8 || c.NGroup != 8 || c.TopKGroup != 4 ||
		c.KVLoraRank != 512 || c.QKRopeHeadDim != 64 || c.RoutedScalingFactor != 2.5 || c.QLoraRank != 1536 {
		t.Fatalf("published config: %+v", c)
	}
	if s := c.SoftmaxScale(); math.Abs(s-0.13524) > 5e-5 {
		t.Errorf("softmax scale %v, want ≈ 0.13524", s)
	}
}

func TestScaled(t *testing.T) {
	c := Published()
	s, err := c.Scaled(8)
	if err != nil {
		t.Fatal(err)
	}
	if s.HiddenSize != 896 || s.MoEIntermediateSize != 256 || s.NRoutedExperts != 32 || s.NumAttentionHeads != 16 ||
		s.QLoraRank != 256 || s.NGroup != 8 || s.TopKGroup != 4 || s.NumExpertsPerTok != 8 || s.KVLoraRank != 512 {
		t.Fatalf("scale 8: %+v", s)
	}
	big, _ := c.Scaled(1000)
	if big.NRoutedExperts != 16 || big.HiddenSize != 128 || big.NumAttentionHeads != 1 {
		t.Fatalf("scale 1000: %+v", big)
	}
	if _, err := c.Scaled(0); !errors.Is(err, ErrConfig) {
		t.Errorf("scale 0: %v", err)
	}
}

func TestValidate(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.KVLoraRank = 256 },
		func(c *Config) { c.ScoringFunc = "softmax" },
		func(c *Config) { c.NRoutedExperts = 250 },
		func(c *Config) { c.TopKGroup = 9 },
		func(c *Config) { c.NumExpertsPerTok = 200 },
		func(c *Config) { c.HiddenSize = 0 },
		func(c *Config) { c.MoEIntermediateSize = 100 },
		func(c *Config) { c.FirstKDenseReplace = -5 },
		func(c *Config) { c.RoutedScalingFactor = 0 },
	}
	for i, mutate := range bad {
		c := Published()
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("case %d: %v, want ErrConfig", i, err)
		}
	}
	if _, err := ParseConfig([]byte("{")); !errors.Is(err, ErrConfig) {
		t.Errorf("truncated JSON: %v", err)
	}
}

// FuzzParseConfig: any config.json either fails with ErrConfig or gives a
// config that Scaled and Route handle without panicking.
func FuzzParseConfig(f *testing.F) {
	f.Add(append([]byte(nil), publishedConfig...), 8)
	f.Add([]byte(`{"n_routed_experts": 8, "n_group": 4}`), 1)
	f.Add([]byte(`[]`), 2)
	f.Add(append([]byte(nil), publishedV32Config...), 8)
	f.Add([]byte(`{"index_topk": 2048, "index_head_dim": 64}`), 1)
	f.Fuzz(func(t *testing.T, b []byte, div int) {
		c, err := ParseConfig(b)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error not ErrConfig: %v", err)
			}
			return
		}
		if c.NRoutedExperts > 1<<16 || c.NumExpertsPerTok > 1<<10 {
			return // valid but too large to route here
		}
		scores := make([]float32, c.NRoutedExperts)
		for i := range scores {
			scores[i] = float32(i%7) / 7
		}
		idx := make([]int32, c.NumExpertsPerTok)
		w := make([]float32, c.NumExpertsPerTok)
		if err := Route(c, scores, make([]float32, len(scores)), idx, w); err != nil {
			t.Fatal(err)
		}
		for _, e := range idx {
			if e < 0 || int(e) >= c.NRoutedExperts {
				t.Fatalf("expert %d out of range", e)
			}
		}
		if s, err := c.Scaled(div%64 + 1); err == nil && s.NRoutedExperts%s.NGroup != 0 {
			t.Fatalf("scaled config has %d experts in %d groups", s.NRoutedExperts, s.NGroup)
		}
		if c.IsV32() && (c.IndexHeadDim != 128 || c.IndexNHeads < 1 || c.IndexTopK < 1) {
			t.Fatalf("V3.2 config accepted with index_n_heads %d, index_head_dim %d, index_topk %d", c.IndexNHeads, c.IndexHeadDim, c.IndexTopK)
		}
	})
}

// TestRopeInvFreqYaRN pins DeepSeek-V3's YaRN-corrected rotary frequencies
// (beta_fast 32, beta_slow 1, factor 40, original context 4096, θ 10000,
// d 64: dims 0…10 kept, 23…31 divided by 40, a ramp between), values from
// the precompute_freqs_cis formula evaluated independently in float64.
func TestRopeInvFreqYaRN(t *testing.T) {
	f := RopeInvFreq(Published())
	for _, g := range []struct {
		i    int
		want float64
	}{{0, 1}, {5, 0.23713737056616555}, {10, 0.056234132519034905}, {15, 0.008334508951020777},
		{20, 0.0007905694150420945}, {25, 1.8747355233311393e-05}, {31, 3.3338035804083097e-06}} {
		if math.Abs(f[g.i]-g.want) > 1e-12*g.want {
			t.Errorf("inv_freq[%d] = %v, want %v", g.i, f[g.i], g.want)
		}
	}
	c := Published()
	c.RopeScaling = nil
	if f := RopeInvFreq(c); math.Abs(f[31]-0.0001333521432163324) > 1e-18 {
		t.Errorf("without rope_scaling inv_freq[31] = %v", f[31])
	}
}

// TestLoadConfigBounded: LoadConfig reads at most MaxConfigBytes, so that an
// endless file (/dev/zero) or a huge one is ErrConfig at once instead of
// exhausting memory; the published config still loads from a file.
func TestLoadConfigBounded(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "config.json")
	if err := os.WriteFile(good, publishedConfig, 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadConfig(good); err != nil || c.HiddenSize != 7168 {
		t.Fatalf("LoadConfig(published) = hidden %d, %v", c.HiddenSize, err)
	}
	// The published config padded past the bound with whitespace: valid
	// JSON, refused for its size.
	big := filepath.Join(dir, "big.json")
	padded := append(append([]byte(nil), publishedConfig...), make([]byte, MaxConfigBytes)...)
	for i := len(publishedConfig); i < len(padded); i++ {
		padded[i] = ' '
	}
	if err := os.WriteFile(big, padded, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(big); !errors.Is(err, ErrConfig) {
		t.Fatalf("LoadConfig(%d bytes) = %v, want ErrConfig", len(padded), err)
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		if _, err := LoadConfig("/dev/zero"); !errors.Is(err, ErrConfig) {
			t.Errorf("LoadConfig(/dev/zero) = %v, want ErrConfig", err)
		}
	}
}
