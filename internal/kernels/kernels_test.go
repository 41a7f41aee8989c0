package kernels

import (
	"errors"
	"math"
	"os/exec"
	"sync"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/platform"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// sets returns the Set of every level this machine and build run, best
// first.
func sets() []Set {
	var out []Set
	f := platform.CPU()
	for _, l := range []Level{AVX512, AVX2, NEON, Generic} {
		if s, err := Select(l, f); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// forEachSet runs f with the Set of every level this machine runs.
func forEachSet(t *testing.T, f func(t *testing.T, ks Set)) {
	for _, s := range sets() {
		t.Run(s.String(), func(t *testing.T) { f(t, s) })
	}
}

// full is a feature set with everything the kernels use.
var full = platform.CPUFeatures{Arch: "amd64", AVX: true, AVX2: true, FMA: true, F16C: true,
	AVX512F: true, AVX512BW: true, AVX512DQ: true}

func TestSelectFeatures(t *testing.T) {
	noBW := full
	noBW.AVX512BW = false
	noDQ := full
	noDQ.AVX512DQ = false
	noFMA := full
	noFMA.FMA = false
	arm := platform.CPUFeatures{Arch: "arm64", NEON: true}
	for _, c := range []struct {
		name string
		f    platform.CPUFeatures
		best Level
	}{
		{"full", full, AVX512},
		{"AVX512F without BW", noBW, AVX2},
		{"AVX512 without DQ", noDQ, AVX2},
		{"no FMA", noFMA, Generic},
		{"arm64", arm, NEON},
		{"arm64 without ASIMD", platform.CPUFeatures{Arch: "arm64"}, Generic},
		{"NEON flag on amd64", platform.CPUFeatures{Arch: "amd64", NEON: true}, Generic},
		{"none", platform.CPUFeatures{Arch: "amd64"}, Generic},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := c.best
			if c.f.Arch == "amd64" && !asmBuild || c.f.Arch == "arm64" && !neonBuild {
				want = Generic // no assembly for this arch in this build: only generic exists
			}
			if got := BestLevel(c.f); got != want {
				t.Fatalf("BestLevel = %v, want %v", got, want)
			}
			// The levels of one architecture never run on the other: NEON
			// is selectable only where it is the best.
			for _, l := range []Level{NEON, AVX512, AVX2, Generic} {
				s, err := Select(l, c.f)
				if l == want || l == Generic || l != NEON && want != NEON && l <= want {
					if err != nil || s.Level() != l {
						t.Fatalf("Select(%v) = %v, %v; want it selected", l, s, err)
					}
					continue
				}
				if !errors.Is(err, ErrUnsupported) {
					t.Fatalf("Select(%v) error %v, want ErrUnsupported", l, err)
				}
			}
		})
	}
	// The case the old picker got wrong: AVX-512F alone never selects the
	// AVX-512 kernels, which use BW instructions (VPCMPEQB to a mask, KORQ).
	if _, err := Select(AVX512, noBW); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Select(AVX512) on F without BW: %v, want ErrUnsupported", err)
	}
}

func TestParseLevel(t *testing.T) {
	for name, want := range map[string]Level{"avx512": AVX512, "avx2": AVX2, "neon": NEON, "go": Generic, "generic": Generic} {
		if l, err := ParseLevel(name); err != nil || l != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", name, l, err, want)
		}
	}
	for _, bad := range []string{"", "AVX512", "NEON", "asimd", "sse", "best"} {
		if _, err := ParseLevel(bad); !errors.Is(err, ErrUnknownLevel) {
			t.Errorf("ParseLevel(%q): %v, want ErrUnknownLevel", bad, err)
		}
		if _, err := ForName(bad); bad != "" && !errors.Is(err, ErrUnknownLevel) {
			t.Errorf("ForName(%q): %v, want ErrUnknownLevel", bad, err)
		}
	}
	if s, err := ForName(""); err != nil || s != Best() {
		t.Fatalf(`ForName("") = %v, %v; want Best() = %v`, s, err, Best())
	}
	if s, err := ForName("go"); err != nil || s.Level() != Generic || s != (Set{}) {
		t.Fatalf(`ForName("go") = %v, %v; want the zero (generic) Set`, s, err)
	}
	if Best().Level() != BestLevel(platform.CPU()) {
		t.Fatalf("Best %v, BestLevel %v", Best(), BestLevel(platform.CPU()))
	}
	if Level(9).String() != "Level(9)" {
		t.Fatalf("Level(9).String() = %q", Level(9).String())
	}
	if _, err := Select(Level(9), full); !errors.Is(err, ErrUnknownLevel) {
		t.Fatalf("Select(Level(9)): %v, want ErrUnknownLevel", err)
	}
}

// TestConcurrentSets runs every level's kernels at the same time from
// several goroutines (under -race in CI): a Set is a value, and nothing is
// shared between levels. Each goroutine's results must equal those of the
// same level run alone.
func TestConcurrentSets(t *testing.T) {
	r := testutil.RNG(21)
	const m, n, k = 32, 128, 200
	a := testutil.Normal(r, m*k, 0, 1)
	b := testutil.Normal(r, k*n, 0, 1)
	all := sets()
	want := make([][]float32, len(all))
	for i, s := range all {
		want[i] = make([]float32, m*n)
		s.GemmPacked(m, n, k, a, k, b, n, want[i], n)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4*len(all))
	for rep := 0; rep < 4; rep++ {
		for i, s := range all {
			wg.Go(func() {
				c := make([]float32, m*n)
				s.GemmPacked(m, n, k, a, k, b, n, c, n)
				for j := range c {
					if c[j] != want[i][j] {
						errs <- s.String()
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("level %s: concurrent result differs from the same level run alone", e)
	}
}

// TestTwins compares every assembly level with the generic twin on the
// attention kernels (within float32 rounding: the lanes sum in another
// order) and on the codecs (bit for bit). The GEMM micro-kernels differ in
// tile shape between levels; TestMicro holds each to a float64 reference.
func TestTwins(t *testing.T) {
	var gen Set
	forEachSet(t, func(t *testing.T, ks Set) {
		r := testutil.RNG(22)
		for _, n := range []int{1, 16, 33, 576} {
			x := testutil.Normal(r, n, 0, 1)
			y := testutil.Normal(r, n, 0, 1)
			if got, want := ks.Dot(x, y), gen.Dot(x, y); math.Abs(float64(got-want)) > 1e-5*float64(n) {
				t.Fatalf("Dot n=%d: %v, generic %v", n, got, want)
			}
			sh := make([]float32, n)
			ga, wa := make([]float32, n), make([]float32, n)
			gx, wx := append([]float32(nil), x...), append([]float32(nil), x...)
			ks.Exp2Sub(gx, sh, ga)
			gen.Exp2Sub(wx, sh, wa)
			for i := range gx {
				if math.Abs(float64(gx[i]-wx[i])) > 2e-7*float64(wx[i]) {
					t.Fatalf("Exp2Sub n=%d [%d]: %v, generic %v", n, i, gx[i], wx[i])
				}
			}
		}
		// Codecs: bit for bit.
		codes := make([]tensor.E4M3, 3*300)
		for i := range codes {
			codes[i] = tensor.E4M3(i * 13)
		}
		gd, wd := make([]float32, len(codes)), make([]float32, len(codes))
		ks.DecodeE4M3Rows(gd, 300, codes, 300, 3, 300)
		gen.DecodeE4M3Rows(wd, 300, codes, 300, 3, 300)
		f := testutil.Normal(r, 1000, 0, 100)
		gb, wb := make([]tensor.BF16, len(f)), make([]tensor.BF16, len(f))
		ks.EncodeBF16(gb, f)
		gen.EncodeBF16(wb, f)
		gh, wh := make([]float32, len(f)), make([]float32, len(f))
		hf := make([]tensor.F16, len(f))
		tensor.EncodeF16(hf, f)
		ks.CvtF16(gh, hf)
		gen.CvtF16(wh, hf)
		for i := range gd {
			if math.Float32bits(gd[i]) != math.Float32bits(wd[i]) && !(gd[i] != gd[i] && wd[i] != wd[i]) {
				t.Fatalf("DecodeE4M3Rows [%d]: %v, generic %v", i, gd[i], wd[i])
			}
		}
		for i := range gb {
			if gb[i] != wb[i] || gh[i] != wh[i] {
				t.Fatalf("[%d]: EncodeBF16 %#x, generic %#x; CvtF16 %v, generic %v", i, gb[i], wb[i], gh[i], wh[i])
			}
		}
		// Fused BF16 QK and PV over rows read in place.
		const d, dv, rows = 576, 512, 9
		base := make([]tensor.BF16, (rows+1)*d)
		tensor.EncodeBF16(base, testutil.Normal(r, len(base), 0, 1))
		offs := make([]int64, rows)
		for i := range offs {
			offs[i] = int64((rows - i) * d)
		}
		q := testutil.Normal(r, d, 0, 1)
		gs, ws := make([]float32, rows), make([]float32, rows)
		qo := make([]float32, d)
		ks.QKOrder(qo, q)
		ks.QKBF16(qo, base, offs, gs)
		gen.QKBF16(q, base, offs, ws)
		go1, wo := make([]float32, dv), make([]float32, dv)
		ks.PVBF16(go1, gs, base, offs)
		gen.PVBF16(wo, ws, base, offs)
		for i := range gs {
			if math.Abs(float64(gs[i]-ws[i])) > 1e-4 {
				t.Fatalf("QKBF16 [%d]: %v, generic %v", i, gs[i], ws[i])
			}
		}
		for i := range go1 {
			if math.Abs(float64(go1[i]-wo[i])) > 1e-3 {
				t.Fatalf("PVBF16 [%d]: %v, generic %v", i, go1[i], wo[i])
			}
		}
		for _, sh := range [][3]int{{64, 128, 96}, {36, 192, 130}, {13, 64, 7}} {
			m, n, k := sh[0], sh[1], sh[2]
			a := testutil.Normal(r, m*k, 0, 1)
			b := testutil.Normal(r, k*n, 0, 1)
			got, want := make([]float32, m*n), make([]float32, m*n)
			ks.Gemm(m, n, k, a, k, 1, b, n, got, n, false)
			gen.Gemm(m, n, k, a, k, 1, b, n, want, n, false)
			for i := range got {
				if math.Abs(float64(got[i]-want[i])) > 1e-5*math.Sqrt(float64(k))*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("Gemm %v [%d]: %v, generic %v", sh, i, got[i], want[i])
				}
			}
		}
	})
}

// TestGenerated checks that the committed assembly and its Go declarations
// equal the generator's output (go generate ./internal/kernels rewrites
// them).
func TestGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the generator")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	out, err := exec.Command(goTool, "run", "./gen", "-dir", ".", "-check").CombinedOutput()
	if err != nil {
		t.Fatalf("generated files are stale: %v\n%s", err, out)
	}
}
