package kernels

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/cuda"
	"github.com/fireflyer-go/fireflyer/cuda/cudatest"
	"github.com/fireflyer-go/fireflyer/cuda/jit"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// kernelSignature finds `template <...> __global__ void ... name(params)`
// in src and returns the template parameter count and each parameter's
// declaration.
func kernelSignature(src, name string) (templateParams int, params []string, err error) {
	re := regexp.MustCompile(`template\s*<([^>]*)>\s*__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s*)?` + regexp.QuoteMeta(name) + `\s*\(([^)]*)\)`)
	m := re.FindStringSubmatch(src)
	if m == nil {
		return 0, nil, fmt.Errorf("no __global__ template %s in source", name)
	}
	for _, p := range strings.Split(m[2], ",") {
		params = append(params, strings.Join(strings.Fields(p), " "))
	}
	return len(strings.Split(m[1], ",")), params, nil
}

// cKind maps a C parameter declaration to the Args kind that must carry it.
func cKind(decl string) (cuda.ArgKind, error) {
	if strings.Contains(decl, "*") {
		return cuda.ArgPtr, nil
	}
	f := strings.Fields(strings.NewReplacer("const ", "", "__restrict__ ", "").Replace(decl))
	switch strings.Join(f[:len(f)-1], " ") {
	case "int":
		return cuda.ArgI32, nil
	case "float":
		return cuda.ArgF32, nil
	case "unsigned", "unsigned int", "u32":
		return cuda.ArgU32, nil
	case "long long":
		return cuda.ArgI64, nil
	}
	return 0, fmt.Errorf("unknown C parameter type in %q", decl)
}

func TestSourcesEmbedded(t *testing.T) {
	if got := SourceNames(); !slices.Equal(got, []string{"fp8_gemm.cu", "mla_decode.cu"}) {
		t.Fatalf("embedded sources %v", got)
	}
	for _, name := range SourceNames() {
		src, err := Source(name)
		if err != nil || len(src.Code) < 1000 {
			t.Fatalf("%s: %d bytes, %v", name, len(src.Code), err)
		}
		// Self-contained: NVRTC gets no include path.
		if strings.Contains(src.Code, "#include") {
			t.Errorf("%s has an #include", name)
		}
		code := regexp.MustCompile(`//[^\n]*`).ReplaceAllString(src.Code, "")
		if strings.Count(code, "{") != strings.Count(code, "}") || strings.Count(code, "(") != strings.Count(code, ")") {
			t.Errorf("%s: unbalanced braces or parentheses", name)
		}
	}
	if _, err := Source("nope.cu"); err == nil {
		t.Error("missing source found")
	}
}

// TestInstancesMatchSources checks, without NVRTC, that every instance the
// Go side asks for names a template in its source with as many template
// parameters as arguments given, and parses as an NVRTC name expression.
func TestInstancesMatchSources(t *testing.T) {
	for _, r := range Instances() {
		t.Run(r.Instance.String(), func(t *testing.T) {
			n, _, err := kernelSignature(r.Source.Code, r.Instance.Name)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(r.Instance.Args) {
				t.Errorf("source template has %d parameters, instance gives %d", n, len(r.Instance.Args))
			}
			p, err := jit.ParseInstance(r.Instance.String())
			if err != nil || !slices.Equal(p.Args, r.Instance.Args) {
				t.Errorf("name expression %q does not round-trip: %v", r.Instance, err)
			}
			if jit.Key(r, 13, 0) == jit.Key(r, 12, 8) {
				t.Error("key ignores the NVRTC version")
			}
		})
	}
}

var (
	gemmOK = FP8GemmNT{M: 129, N: 300, K: 640, A: 0x1000, SA: 0x2000, B: 0x3000, SB: 0x4000, D: 0x5000, Out: tensor.BF16T}
	mlaOK  = MLADecode{Batch: 3, SeqQ: 2, HeadsQ: 16, Q: 0x1000, KV: 0x2000, BlockTable: 0x3000, MaxPages: 5,
		CacheSeqlens: 0x4000, SoftmaxScale: 0.0417, Causal: true, NumSplits: 4, Workspace: 0x10000, Out: 0x5000, LSE: 0x6000}
)

// TestArgsMatchSignatures checks that each launch packs exactly the
// parameter kinds the kernel declares, in order.
func TestArgsMatchSignatures(t *testing.T) {
	g, err := gemmOK.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file, kernel string
		args         *cuda.Args
	}{
		{"fp8_gemm.cu", "fp8_gemm_nt", g.args()},
		{"mla_decode.cu", "mla_decode_partial", mlaOK.partialArgs()},
		{"mla_decode.cu", "mla_decode_combine", mlaOK.combineArgs()},
	} {
		t.Run(c.kernel, func(t *testing.T) {
			src, _ := Source(c.file)
			_, params, err := kernelSignature(src.Code, c.kernel)
			if err != nil {
				t.Fatal(err)
			}
			var want []cuda.ArgKind
			for _, p := range params {
				k, err := cKind(p)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, k)
			}
			if got := c.args.Kinds(); !slices.Equal(got, want) {
				t.Errorf("packed %v, kernel declares %v (%q)", got, want, params)
			}
		})
	}
}

func TestGemmArgValues(t *testing.T) {
	g, _ := gemmOK.withDefaults()
	if g.LDA != 640 || g.LDB != 640 || g.LDD != 300 || g.SAStrideM != 5 || g.SAStrideK != 1 || g.KBlocks() != 5 {
		t.Fatalf("defaults %+v", g)
	}
	cfg := g.launchConfig()
	if cfg.Grid != (cuda.Dim3{X: 5, Y: 3, Z: 1}) || cfg.Block.X != 256 {
		t.Errorf("launch %+v", cfg)
	}
	_, buf := g.args().Layout()
	ints := []int32{}
	for off := 40; off < len(buf); off += 4 {
		ints = append(ints, int32(uint32(buf[off])|uint32(buf[off+1])<<8|uint32(buf[off+2])<<16|uint32(buf[off+3])<<24))
	}
	if want := []int32{129, 300, 640, 640, 640, 300, 5, 1}; !slices.Equal(ints, want) {
		t.Errorf("integer args %v, want %v", ints, want)
	}
}

func TestGemmValidation(t *testing.T) {
	for field, mut := range map[string]func(*FP8GemmNT){
		"M, N, K":                func(p *FP8GemmNT) { p.K = 0 },
		"Out":                    func(p *FP8GemmNT) { p.Out = tensor.F16T },
		"LDA":                    func(p *FP8GemmNT) { p.LDA = 100 },
		"LDD":                    func(p *FP8GemmNT) { p.LDD = 299 },
		"SAStrideM":              func(p *FP8GemmNT) { p.SAStrideM, p.SAStrideK = -1, 1 },
		"FP8GemmNT.SB is a null": func(p *FP8GemmNT) { p.SB = 0 },
		"grid y":                 func(p *FP8GemmNT) { p.M = 65536 * 64 },
		"aligned":                func(p *FP8GemmNT) { p.D = 0x5001 },
	} {
		p := gemmOK
		mut(&p)
		_, err := p.withDefaults()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
		if !errors.Is(err, tensor.ErrShape) && !errors.Is(err, tensor.ErrDType) && !errors.Is(err, cuda.ErrInvalid) {
			t.Errorf("%s: %v is not a sentinel error", field, err)
		}
	}
}

func TestMLAValidationAndLayout(t *testing.T) {
	if err := mlaOK.validate(); err != nil {
		t.Fatal(err)
	}
	for field, mut := range map[string]func(*MLADecode){
		"Batch, SeqQ, HeadsQ": func(p *MLADecode) { p.HeadsQ = 0 },
		"NumSplits":           func(p *MLADecode) { p.NumSplits = 0 },
		"MaxPages":            func(p *MLADecode) { p.MaxPages = 0 },
		"MLADecode.KV":        func(p *MLADecode) { p.KV = 0x2008 },
		"MLADecode.LSE":       func(p *MLADecode) { p.LSE = 0 },
	} {
		p := mlaOK
		mut(&p)
		if err := p.validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	o, l := mlaOK.workspace()
	if o != 0x10000 || l != 0x10000+3*4*32*512*4 {
		t.Errorf("workspace split %#x %#x", o, l)
	}
	if got, want := MLAWorkspaceBytes(3, 2, 16, 4), 3*4*32*513*4; got != want {
		t.Errorf("workspace bytes %d, want %d", got, want)
	}
	if end := l.Add(3 * 4 * 32 * 4); end != o.Add(MLAWorkspaceBytes(3, 2, 16, 4)) {
		t.Errorf("partial LSE ends at %#x, workspace at %#x", end, o.Add(MLAWorkspaceBytes(3, 2, 16, 4)))
	}
	pc, cc := mlaOK.partialConfig(), mlaOK.combineConfig()
	if pc.Grid != (cuda.Dim3{X: 4, Y: 4, Z: 3}) || pc.Block.X != 256 || cc.Grid != (cuda.Dim3{X: 32, Y: 3, Z: 1}) || cc.Block.X != 128 {
		t.Errorf("configs %+v %+v", pc, cc)
	}
	for _, c := range []struct{ sms, b, sq, hq, pages, want int }{
		{132, 128, 1, 16, 64, 2}, {132, 1, 1, 16, 64, 64}, {132, 2, 2, 128, 3, 3}, {132, 4, 1, 16, 100, 33},
	} {
		if got := SuggestSplits(c.sms, c.b, c.sq, c.hq, c.pages); got != c.want {
			t.Errorf("SuggestSplits%v = %d", c, got)
		}
	}
}

// TestLaunchThroughFake drives both kernels through the fake driver and
// NVRTC: compile, cache, load by lowered name, launch, and checks what the
// driver received.
func TestLaunchThroughFake(t *testing.T) {
	f := cudatest.New()
	for _, r := range Instances() {
		f.Kernels[cudatest.LoweredName(r.Instance.String())] = cudatest.Kernel{ArgSizes: []int{8, 8}}
	}
	n := f.NVRTC(t)
	_, ctx := f.Open(t)
	comp, _ := jit.New(n, jit.Config{CacheDir: t.TempDir()})
	s, err := New(ctx, comp)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Warmup(); err != nil {
		t.Fatal(err)
	}
	if got := len(f.Compiles()); got != 4 {
		t.Errorf("%d compilations for 4 instances", got)
	}
	for _, c := range f.Compiles() {
		if !strings.HasPrefix(c, "--gpu-architecture=sm_90a ") {
			t.Errorf("compiled with %q", c)
		}
	}
	if err := s.FP8GemmNT(gemmOK); err != nil {
		t.Fatal(err)
	}
	if err := s.MLADecode(mlaOK); err != nil {
		t.Fatal(err)
	}
	ls := f.Launches()
	if len(ls) != 3 {
		t.Fatalf("%d launches", len(ls))
	}
	if ls[0].Kernel != "_fake_fp8_gemm_nt_64_64_1" || ls[0].Grid != [3]uint32{5, 3, 1} || cudatest.ArgPtr(ls[0].Args[0]) != 0x5000 || cudatest.ArgPtr(ls[0].Args[1]) != 0x1000 {
		t.Errorf("gemm launch %+v", ls[0])
	}
	if ls[1].Kernel != "_fake_mla_decode_partial_576_512_64" || ls[1].Grid != [3]uint32{4, 4, 3} {
		t.Errorf("partial launch %+v", ls[1])
	}
	if ls[2].Kernel != "_fake_mla_decode_combine_512" || cudatest.ArgPtr(ls[2].Args[0]) != 0x5000 || cudatest.ArgPtr(ls[2].Args[1]) != 0x6000 {
		t.Errorf("combine launch %+v", ls[2])
	}
	if err := s.FP8GemmNT(FP8GemmNT{}); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("empty GEMM: %v", err)
	}
	if len(f.Launches()) != 3 {
		t.Error("a refused call reached the driver")
	}
	if _, err := New(nil, comp); !errors.Is(err, cuda.ErrInvalid) {
		t.Errorf("New(nil): %v", err)
	}
}

// TestReferencesAgree checks the float64 references the GPU tests use:
// FP8 quantization as DeepGEMM does it stays within DeepGEMM's calc_diff
// gate of the unquantized product.
func TestReferencesAgree(t *testing.T) {
	r := testutilRNG(t)
	c := newGemmCase(r, 33, 200, 300)
	if d := calcDiff(c.refExact(), c.refUnquantized()); d >= 1e-3 || d < 1e-6 {
		t.Errorf("FP8 vs unquantized calc_diff %.3g, want in [1e-6, 1e-3)", d)
	}
	m := newMLACase(r, []int32{0, 1, 64, 130}, 2, 4, true)
	out, lse := m.ref()
	for i, v := range lse {
		b := i / (m.HQ * m.SQ)
		sq := i % m.SQ
		if n := int(m.Seqlens[b]) - (m.SQ - 1 - sq); n <= 0 {
			if !math.IsInf(v, 1) {
				t.Errorf("lse[%d] = %v for a row without keys", i, v)
			}
		} else if math.IsInf(v, 0) || v != v {
			t.Errorf("lse[%d] = %v", i, v)
		}
	}
	// With one key the output is that key's V exactly.
	rows := m.SQ * m.HQ
	for h := range m.HQ {
		row := 1*m.HQ + h // sq = 1 of batch 1 sees key 0
		page := int(m.BlockTable[1*m.MaxPages])
		for d := range MLAHeadDimV {
			if want := float64(m.KV[page*MLAPageSize*MLAHeadDimQK+d].Float32()); out[(1*rows+row)*MLAHeadDimV+d] != want {
				t.Fatalf("single-key output differs at h=%d d=%d", h, d)
			}
		}
	}
}
