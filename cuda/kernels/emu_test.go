package kernels

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// The emulator tests compile the embedded kernel sources, unchanged, with
// g++ against testdata/emu/emu.h (a CPU stand-in for the CUDA features
// they use: threads, blocks, __shared__, __syncthreads, __shfl_xor_sync)
// and check them against the float64 references with the GPU tests'
// gates. They need g++ with C++20 and skip without it. They catch indexing,
// masking and split/combine mistakes before any GPU time is spent; they
// cannot catch what the emulator does not model (memory coalescing, NVRTC
// dialect, timing).

var (
	emuOnce sync.Once
	emuDir  string
	emuErr  error
)

func buildEmulator(t *testing.T) string {
	t.Helper()
	gxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("skipping emulator test: no g++")
	}
	emuOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fireflyer-emu-")
		if err != nil {
			emuErr = err
			return
		}
		emuDir = dir
		for _, name := range SourceNames() {
			src, _ := Source(name)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(src.Code), 0o644); err != nil {
				emuErr = err
				return
			}
		}
		inc, _ := filepath.Abs("testdata/emu")
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i, p := range []string{"gemm", "mla", "convert"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := exec.Command(gxx, "-std=c++20", "-O2", "-pthread", "-Wall", "-Werror", "-Wno-unknown-pragmas",
					"-I", inc, "-I", dir, filepath.Join(inc, p+"_main.cpp"), "-o", filepath.Join(dir, p)).CombinedOutput()
				if err != nil {
					errs[i] = fmt.Errorf("g++ %s: %v\n%s", p, err, out)
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				emuErr = err
			}
		}
	})
	if emuErr != nil {
		t.Fatal(emuErr)
	}
	return emuDir
}

func writeBin[T any](t *testing.T, dir, name string, s []T) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), tensor.Bytes(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readBin[T any](t *testing.T, dir, name string) []T {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	var zero T
	n := len(b) / len(tensor.Bytes([]T{zero}))
	res := make([]T, n)
	copy(tensor.Bytes(res), b)
	return res
}

func runEmu(t *testing.T, bin string, args ...string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
}

func TestEmulatedFP8GemmNT(t *testing.T) {
	emu := buildEmulator(t)
	r := testutilRNG(t)
	for _, c := range []struct {
		m, n, k int
		out     tensor.DType
		mnMajor bool
	}{
		{1, 64, 128, tensor.BF16T, false}, // too small for the unquantized gate
		{64, 64, 128, tensor.BF16T, false},
		{70, 130, 200, tensor.BF16T, false}, // ragged M, N and K
		{65, 128, 300, tensor.F32, false},
		{33, 200, 256, tensor.BF16T, true}, // SA in DeepGEMM's MN-major layout
	} {
		t.Run(fmt.Sprintf("m=%d/n=%d/k=%d/%v/mn-major=%v", c.m, c.n, c.k, c.out, c.mnMajor), func(t *testing.T) {
			dir := t.TempDir()
			g := newGemmCase(r, c.m, c.n, c.k)
			kb := ceilDiv(c.k, ScaleBlock)
			sa, sam, sak := g.sa, kb, 1
			if c.mnMajor {
				sa = make([]float32, len(g.sa))
				for i := range c.m {
					for b := range kb {
						sa[b*c.m+i] = g.sa[i*kb+b]
					}
				}
				sam, sak = 1, c.m
			}
			writeBin(t, dir, "a.bin", g.a)
			writeBin(t, dir, "b.bin", g.b)
			writeBin(t, dir, "sa.bin", sa)
			writeBin(t, dir, "sb.bin", g.sb)
			bf := "0"
			if c.out == tensor.BF16T {
				bf = "1"
			}
			runEmu(t, filepath.Join(emu, "gemm"), dir, strconv.Itoa(c.m), strconv.Itoa(c.n), strconv.Itoa(c.k), bf, strconv.Itoa(sam), strconv.Itoa(sak))
			var got []float64
			if c.out == tensor.BF16T {
				got = toF64(readBin[tensor.BF16](t, dir, "d.bin"))
			} else {
				got = toF64(readBin[f32](t, dir, "d.bin"))
			}
			for i, v := range got {
				if math.IsNaN(v) {
					t.Fatalf("D[%d] unwritten", i)
				}
			}
			exact, unq := calcDiff(got, g.refExact()), calcDiff(got, g.refUnquantized())
			t.Logf("calc_diff vs dequantized %.3g, vs unquantized %.3g", exact, unq)
			limit := 1e-5
			if c.out == tensor.F32 {
				limit = 1e-10 // float32 accumulation only
			}
			if exact >= limit || unq >= 1e-3 && unquantizedGated(c.m, c.n) {
				t.Errorf("calc_diff %.3g (gate %g), unquantized %.3g (gate 1e-3)", exact, limit, unq)
			}
		})
	}
}

func TestEmulatedMLADecode(t *testing.T) {
	emu := buildEmulator(t)
	r := testutilRNG(t)
	for _, c := range []struct {
		seqlens []int32
		sq, hq  int
		causal  bool
		splits  int
	}{
		{[]int32{1, 65, 130}, 1, 16, false, 1},
		{[]int32{0, 64, 200}, 2, 8, true, 3},
		{[]int32{20, 129}, 1, 12, false, 5}, // more splits than pages; rows not a multiple of 8
	} {
		t.Run(fmt.Sprintf("seqlens=%v/sq=%d/hq=%d/causal=%v/splits=%d", c.seqlens, c.sq, c.hq, c.causal, c.splits), func(t *testing.T) {
			dir := t.TempDir()
			m := newMLACase(r, c.seqlens, c.sq, c.hq, c.causal)
			writeBin(t, dir, "q.bin", m.Q)
			writeBin(t, dir, "kv.bin", m.KV)
			writeBin(t, dir, "bt.bin", m.BlockTable)
			writeBin(t, dir, "seqlens.bin", m.Seqlens)
			causal := "0"
			if c.causal {
				causal = "1"
			}
			runEmu(t, filepath.Join(emu, "mla"), dir, strconv.Itoa(m.B), strconv.Itoa(m.SQ), strconv.Itoa(m.HQ), strconv.Itoa(c.splits),
				strconv.Itoa(m.MaxPages), causal, strconv.FormatFloat(float64(m.Scale), 'g', -1, 32))
			out := toF64(readBin[tensor.BF16](t, dir, "out.bin"))
			lse := toF64(readBin[f32](t, dir, "lse.bin"))
			refOut, refLSE := m.ref()
			var gl, wl []float64
			for i := range refLSE {
				if math.IsInf(refLSE[i], 1) {
					if !math.IsInf(lse[i], 1) {
						t.Fatalf("lse[%d] = %v, want +Inf", i, lse[i])
					}
					continue
				}
				gl, wl = append(gl, lse[i]), append(wl, refLSE[i])
			}
			for i, v := range out {
				if math.IsNaN(v) {
					t.Fatalf("out[%d] unwritten", i)
				}
			}
			dOut, dLSE := calcDiff(out, refOut), calcDiff(gl, wl)
			t.Logf("calc_diff out %.3g, lse %.3g", dOut, dLSE)
			if dOut >= 1e-5 || dLSE >= 1e-5 {
				t.Errorf("out calc_diff %.3g, lse calc_diff %.3g (gates 1e-5)", dOut, dLSE)
			}
		})
	}
}

// TestEmulatedConversions checks the kernels' bit-level conversions
// exhaustively: every E4M3 code decodes as tensor.E4M3 does, and
// float_to_bf16 rounds as PyTorch does (tensor.BF16FromFloat32Torch) on
// random, tie, subnormal, overflowing and special values.
func TestEmulatedConversions(t *testing.T) {
	emu := buildEmulator(t)
	dir := t.TempDir()
	r := testutilRNG(t)
	in := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1.00390625, 1.01171875, 3.3895314e38, 3.4028235e38,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-40, -1e-45}
	for range 20000 {
		in = append(in, math.Float32frombits(r.Uint32()))
	}
	writeBin(t, dir, "f32.bin", in)
	runEmu(t, filepath.Join(emu, "convert"), dir)
	dec := readBin[float32](t, dir, "e4m3.bin")
	for c := range 256 {
		want := tensor.E4M3(c).Float32()
		if got := dec[c]; math.Float32bits(got) != math.Float32bits(want) && !(math.IsNaN(float64(got)) && math.IsNaN(float64(want))) {
			t.Errorf("e4m3_to_float(%#02x) = %v, want %v", c, got, want)
		}
	}
	bf := readBin[tensor.BF16](t, dir, "bf16.bin")
	for i, f := range in {
		want := tensor.BF16FromFloat32Torch(f)
		if bf[i] != want && !(bf[i].IsNaN() && want.IsNaN()) {
			t.Errorf("float_to_bf16(%v / %#08x) = %#04x, want %#04x", f, math.Float32bits(f), uint16(bf[i]), uint16(want))
		}
	}
}
