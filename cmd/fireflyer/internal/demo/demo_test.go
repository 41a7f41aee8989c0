package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/cmd/fireflyer/internal/dsv3"
	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
)

// testRankEnv marks the test binary started as a demo rank process (see
// testWorker).
const testRankEnv = "FIREFLYER_DEMO_TEST_RANK"

// testWorker starts this test binary as a rank process, with extra
// environment entries.
func testWorker(env ...string) WorkerLauncher {
	return func(int) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(append(os.Environ(), testRankEnv+"=1"), env...)
		return cmd
	}
}

// TestMain lets the test binary act as a demo rank process when the demo
// starts it for the unix and tcp transports.
func TestMain(m *testing.M) {
	if os.Getenv(testRankEnv) != "" {
		if err := RankMain(context.Background(), os.Stdin, os.Stdout); err != nil {
			os.Stderr.WriteString("rank: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	leaktest.Main(m)
}

func small(t *testing.T) Options {
	return Options{Scale: 64, Batch: 12, Ranks: 4, Prefix: 40, PageSize: 16, Seed: 3, Dir: filepath.Join(t.TempDir(), "ckpt")}
}

func checkResult(t *testing.T, r *Result, ranks int) {
	t.Helper()
	if !r.OK || r.CalcDiff >= Threshold || r.CalcDiff <= 0 {
		t.Fatalf("check: calc_diff %v ok=%v", r.CalcDiff, r.OK)
	}
	if r.Read.Verified != r.Read.Tensors || r.Read.Tensors == 0 {
		t.Fatalf("checkpoint round trip: %d of %d checksums verified", r.Read.Verified, r.Read.Tensors)
	}
	if r.Written != nil && (r.Written.Tensors != r.Read.Tensors || r.Written.Bytes != r.Read.Bytes) {
		t.Fatalf("written %d tensors/%d bytes, read %d/%d", r.Written.Tensors, r.Written.Bytes, r.Read.Tensors, r.Read.Bytes)
	}
	want := []string{"checkpoint: read shards", "kv cache", "attention: MLA decode", "router", "eplb", "shared expert",
		"ep: low-latency dispatch", "experts: masked grouped", "ep: low-latency combine", "pipeline: DualPipe", "reference"}
	names := ""
	for _, s := range r.Stages {
		names += s.Name + "\n"
		if s.Seconds < 0 {
			t.Errorf("stage %q has negative time", s.Name)
		}
	}
	for _, w := range want {
		if !strings.Contains(names, w) {
			t.Errorf("no stage row %q in\n%s", w, names)
		}
	}
	if r.EPLB.ImbalanceAfter > r.EPLB.ImbalanceBefore+1e-9 {
		t.Errorf("EPLB made the warm-up loads worse: %v → %v", r.EPLB.ImbalanceBefore, r.EPLB.ImbalanceAfter)
	}
	if r.Pipeline.Makespan <= 0 || r.Pipeline.PeakAct != 17 {
		t.Errorf("pipeline: %+v", r.Pipeline)
	}
	var buf bytes.Buffer
	PrintTable(&buf, r)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "check: calc_diff=") || !strings.HasSuffix(last, "threshold=0.002 ok") {
		t.Fatalf("last line %q", last)
	}
}

func TestDemoInproc(t *testing.T) {
	o := small(t)
	r, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r, o.Ranks)
	t.Logf("calc_diff %.3g (attention %.3g, moe %.3g)", r.CalcDiff, r.AttnDiff, r.MoEDiff)

	// The kept checkpoint reads back through --checkpoint with the same answer.
	o2 := Options{Checkpoint: o.Dir, Batch: o.Batch, Ranks: o.Ranks, Prefix: o.Prefix, PageSize: o.PageSize, Seed: o.Seed}
	r2, err := Run(context.Background(), o2)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r2, o.Ranks)
	if r2.Written != nil || r2.CalcDiff != r.CalcDiff {
		t.Fatalf("re-read checkpoint: written %v, calc_diff %v vs %v", r2.Written, r2.CalcDiff, r.CalcDiff)
	}
}

func TestDemoUnixProcesses(t *testing.T) {
	o := small(t)
	o.Ranks, o.Transport = 2, "unix"
	o.Worker = testWorker()
	r, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r, 2)
	inproc := small(t)
	inproc.Ranks = 2
	ri, err := Run(context.Background(), inproc)
	if err != nil {
		t.Fatal(err)
	}
	if ri.CalcDiff != r.CalcDiff {
		t.Fatalf("unix processes calc_diff %v, in-process %v: the transports must agree bit for bit", r.CalcDiff, ri.CalcDiff)
	}
}

func TestCorruptCheckpoint(t *testing.T) {
	o := small(t)
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Join(o.Dir, "model-00002-of-00002.safetensors")
	b, err := os.ReadFile(shard)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-100] ^= 0x40
	if err := os.WriteFile(shard, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), Options{Checkpoint: o.Dir, Batch: 4, Ranks: 2})
	if !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), "CRC-32C") {
		t.Fatalf("corrupt shard: %v", err)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{{Scale: -1}, {Batch: -2}, {Ranks: 100}, {Transport: "rdma"}, {Prefix: -1}, {Layer: -1}, {Layer: 1}, {FSBackend: "tape"}} {
		if _, err := Run(context.Background(), o); !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if _, err := Run(context.Background(), Options{Checkpoint: t.TempDir()}); err == nil {
		t.Error("empty checkpoint directory accepted")
	}
}

// TestCheckFailsOnWrongStage perturbs one stage's result and expects the
// check to fail. Every perturbation keeps the layer output's calc_diff under
// Threshold (the residual stream dominates it, and the reference reuses the
// fast path's expert choice), so only the per-part gates and the router
// re-selection catch them: a 10% error in the attention output (about what
// a softmax scale without mscale² does), routing that ignores the
// correction bias, and dropping one of the top-k experts.
func TestCheckFailsOnWrongStage(t *testing.T) {
	for _, c := range []struct {
		name  string
		after string // the stage whose result is altered
		f     func(s *state)
	}{
		{"attention ×0.9", "attention", func(s *state) {
			for i := range s.attn {
				s.attn[i] *= 0.9
			}
		}},
		{"routing without e_score_correction_bias", "shared expert", func(s *state) {
			// The routing stage ran with the real bias; the check's
			// re-selection sees the bias zeroed, as if routing had
			// ignored it.
			clear(s.w.Bias)
		}},
		{"last expert dropped", "shared expert", func(s *state) {
			for i := 7; i < len(s.wts); i += 8 {
				s.wts[i] = 0
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := small(t)
			o.Dir = ""
			r, err := runStages(context.Background(), o, perturbAfter(t, c.after, c.f))
			if err != nil {
				t.Fatal(err)
			}
			if r.OK {
				t.Fatalf("check passed with a wrong stage: calc_diff %.3g, attention %.3g, moe %.3g", r.CalcDiff, r.AttnDiff, r.MoEDiff)
			}
			var buf bytes.Buffer
			PrintTable(&buf, r)
			if !strings.HasSuffix(strings.TrimSpace(buf.String()), "threshold=0.002 FAILED") {
				t.Fatalf("check line does not say FAILED:\n%s", buf.String())
			}
			t.Logf("calc_diff %.3g, attention %.3g, moe %.3g", r.CalcDiff, r.AttnDiff, r.MoEDiff)
		})
	}
}

// perturbAfter returns the demo's stages with an untimed stage calling f
// inserted after the stage named after.
func perturbAfter(t *testing.T, after string, f func(s *state)) []stage {
	t.Helper()
	for i, st := range stages {
		if st.name == after {
			p := stage{name: "perturb " + after, run: func(_ context.Context, s *state) (int64, int64, error) { f(s); return 0, 0, nil }}
			return append(append(append([]stage(nil), stages[:i+1]...), p), stages[i+1:]...)
		}
	}
	t.Fatalf("no stage %q", after)
	return nil
}

// TestStageTable: the stage table is made of the rows the stage list
// declares, in order, and a stage adding an undeclared row fails the run.
func TestStageTable(t *testing.T) {
	o := small(t)
	o.Dir = ""
	r, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	_ = o.defaults()
	var want []string
	for _, st := range stages {
		if st.rows != nil {
			want = append(want, st.rows(&o)...)
		}
	}
	var got []string
	for _, s := range r.Stages {
		got = append(got, s.Name)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stage table rows\n%q\nwant\n%q", got, want)
	}
	bad := append([]stage{{name: "rogue", run: func(_ context.Context, s *state) (int64, int64, error) {
		return 0, 0, s.row("undeclared", 0, 0, 0)
	}}}, stages...)
	if _, err := runStages(context.Background(), o, bad); err == nil || !strings.Contains(err.Error(), "undeclared") {
		t.Fatalf("undeclared row: err %v", err)
	}
}

// TestLoadOpensOnlyTheLayersShards: a real checkpoint has 163 shards of
// about 4.3 GB; LoadCheckpoint must read only those the index maps the
// layer's tensors to. Here a third shard holding only another layer's
// tensor is not even a safetensors file, so opening it would fail.
func TestLoadOpensOnlyTheLayersShards(t *testing.T) {
	o := small(t)
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	other := "model-00003-of-00003.safetensors"
	if err := os.WriteFile(filepath.Join(o.Dir, other), []byte("not a shard"), 0o644); err != nil {
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
	idx["weight_map"].(map[string]any)["model.layers.4.mlp.gate.weight"] = other
	if b, err = json.Marshal(idx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ip, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), Options{Checkpoint: o.Dir, Batch: 4, Ranks: 2, Prefix: 20, PageSize: 16})
	if err != nil {
		t.Fatalf("layer 3 from a checkpoint whose unrelated shard is unreadable: %v", err)
	}
	for _, f := range r.Read.Files {
		if f == other {
			t.Fatalf("read %s, which holds no tensor of layer 3", other)
		}
	}
	// Asking for layer 4 reads that shard and reports it.
	_, err = Run(context.Background(), Options{Checkpoint: o.Dir, Layer: 4, Batch: 4, Ranks: 2, Prefix: 20, PageSize: 16})
	if err == nil || !strings.Contains(err.Error(), other) {
		t.Fatalf("layer 4: %v", err)
	}
}

// TestRefusesWhatMemoryCannotHold: a config (or --scale 1) whose layer
// needs more memory than the machine has is refused up front with a
// message, instead of being killed by the kernel half-way.
func TestRefusesWhatMemoryCannotHold(t *testing.T) {
	if physicalMemory() == 0 {
		t.Skip("physical memory unknown on this system")
	}
	c := dsv3.Published()
	c.HiddenSize = 1 << 30
	_, err := Run(context.Background(), Options{Config: &c, Scale: 1})
	if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "GB of memory") {
		t.Fatalf("hidden_size 2^30: %v", err)
	}
	o := Options{Layer: 3}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	if n := memoryNeeded(dsv3.Published(), o); n < 60e9 || n > 80e9 {
		t.Errorf("full-size layer estimated at %.1f GB, want about 69", float64(n)/1e9)
	}
	for _, o := range []Options{{Scale: 64, Batch: 3_000_000_000}, {Scale: 64, Batch: 100_000_000}, {Scale: 64, Batch: 64, Prefix: 150_000}} {
		_, err := Run(context.Background(), o)
		if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "GB of memory") {
			t.Errorf("batch %d, prefix %d: %v", o.Batch, o.Prefix, err)
		}
	}
	// A config.json without max_position_embeddings still runs.
	c2, _ := dsv3.Published().Scaled(64)
	c2.MaxPositionEmbeddings = 0
	if _, err := Run(context.Background(), Options{Config: &c2, Scale: 1, Batch: 2, Ranks: 2, Prefix: 20, PageSize: 16}); err != nil {
		t.Errorf("no max_position_embeddings: %v", err)
	}
	// Positions stop at max_position_embeddings (int32 lengths overflowed).
	_, err = Run(context.Background(), Options{Scale: 64, Batch: 1, Prefix: 3_000_000_000})
	if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "--prefix") {
		t.Errorf("prefix 3e9: %v", err)
	}
}

// TestDirKeepsForeignFiles: --dir pointed at a directory holding other
// files (a real checkpoint, say) is refused before anything is written;
// a previous demo run's directory is reused.
func TestDirKeepsForeignFiles(t *testing.T) {
	dir := t.TempDir()
	index := filepath.Join(dir, "model.safetensors.index.json")
	if err := os.WriteFile(index, []byte(`{"weight_map":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model-00001-of-000163.safetensors"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), Options{Scale: 64, Batch: 2, Ranks: 2, Prefix: 20, Dir: dir})
	if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "--dir") {
		t.Fatalf("foreign directory: %v", err)
	}
	if b, _ := os.ReadFile(index); string(b) != `{"weight_map":{}}` {
		t.Fatalf("index overwritten: %s", b)
	}
	o := small(t)
	for range 2 {
		if _, err := Run(context.Background(), o); err != nil {
			t.Fatalf("re-running into the demo's own directory: %v", err)
		}
	}
}
