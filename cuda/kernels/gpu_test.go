package kernels

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/fireflyer-go/fireflyer/cuda"
	"github.com/fireflyer-go/fireflyer/cuda/cudatest"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// The TestGPU* tests and BenchmarkGPU* benchmarks run the kernels on a real
// GPU (compiled by the system NVRTC) and compare with float64 references
// computed here; without a driver they skip saying why.

func gpuSet(tb testing.TB) *Set {
	tb.Helper()
	ctx := cudatest.RequireGPU(tb)
	cudatest.RequireNVRTC(tb)
	s, err := New(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func upload[T any](tb testing.TB, ctx *cuda.Context, s []T) *cuda.Buffer {
	tb.Helper()
	b, err := ctx.Upload(tensor.Bytes(s))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Free() })
	return b
}

// alloc returns a buffer poisoned with 0xFF bytes (NaN in BF16 and F32), so
// an element the kernel never writes shows up.
func alloc(tb testing.TB, ctx *cuda.Context, n int) *cuda.Buffer {
	tb.Helper()
	b, err := ctx.Alloc(n)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Free() })
	if err := ctx.Memset(b.Ptr, 0xFF, n); err != nil {
		tb.Fatal(err)
	}
	return b
}

func download[T any](tb testing.TB, ctx *cuda.Context, p cuda.DevicePtr, n int) []T {
	tb.Helper()
	out := make([]T, n)
	if err := ctx.CopyDtoH(tensor.Bytes(out), p); err != nil {
		tb.Fatal(err)
	}
	return out
}

func toF64[T interface{ Float32() float32 }](s []T) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v.Float32())
	}
	return out
}

type f32 float32

func (v f32) Float32() float32 { return float32(v) }

func TestGPUFP8GemmNT(t *testing.T) {
	s := gpuSet(t)
	ctx := s.Context()
	r := testutilRNG(t)
	shapes := [][3]int{{1, 128, 128}, {64, 256, 512}, {129, 300, 640}, {200, 130, 200}, {7, 64, 1000}}
	if !testing.Short() {
		shapes = append(shapes, [3]int{256, 1536, 7168}, [3]int{128, 2112, 7168})
	}
	for _, sh := range shapes {
		for _, out := range []tensor.DType{tensor.BF16T, tensor.F32} {
			for _, mnMajor := range []bool{false, true} {
				if mnMajor && out == tensor.F32 {
					continue
				}
				name := fmt.Sprintf("m=%d/n=%d/k=%d/%v", sh[0], sh[1], sh[2], out)
				if mnMajor {
					name += "/sa-mn-major"
				}
				t.Run(name, func(t *testing.T) {
					c := newGemmCase(r, sh[0], sh[1], sh[2])
					sa := c.sa
					p := FP8GemmNT{M: c.M, N: c.N, K: c.K, Out: out}
					if mnMajor { // DeepGEMM's layout: SA transposed to [KB, M]
						kb := p.KBlocks()
						sa = make([]float32, len(c.sa))
						for i := range c.M {
							for b := range kb {
								sa[b*c.M+i] = c.sa[i*kb+b]
							}
						}
						p.SAStrideM, p.SAStrideK = 1, c.M
					}
					p.A = upload(t, ctx, c.a).Ptr
					p.SA = upload(t, ctx, sa).Ptr
					p.B = upload(t, ctx, c.b).Ptr
					p.SB = upload(t, ctx, c.sb).Ptr
					p.D = alloc(t, ctx, c.M*c.N*out.Size()).Ptr
					if err := s.FP8GemmNT(p); err != nil {
						t.Fatal(err)
					}
					if err := ctx.Synchronize(); err != nil {
						t.Fatal(err)
					}
					var got []float64
					if out == tensor.BF16T {
						got = toF64(download[tensor.BF16](t, ctx, p.D, c.M*c.N))
					} else {
						got = toF64(download[f32](t, ctx, p.D, c.M*c.N))
					}
					for i, v := range got {
						if math.IsNaN(v) || math.IsInf(v, 0) {
							t.Fatalf("D[%d,%d] = %v (unwritten or overflow)", i/c.N, i%c.N, v)
						}
					}
					exact, unq := calcDiff(got, c.refExact()), calcDiff(got, c.refUnquantized())
					t.Logf("calc_diff vs dequantized %.3g, vs unquantized %.3g", exact, unq)
					if exact >= 1e-5 {
						t.Errorf("calc_diff vs dequantized float64 reference %.3g >= 1e-5", exact)
					}
					if unq >= 1e-3 && unquantizedGated(c.M, c.N) {
						t.Errorf("calc_diff vs unquantized float64 reference %.3g >= 1e-3 (DeepGEMM's gate)", unq)
					}
				})
			}
		}
	}
}

func TestGPUMLADecode(t *testing.T) {
	s := gpuSet(t)
	ctx := s.Context()
	r := testutilRNG(t)
	type cfg struct {
		seqlens []int32
		sq, hq  int
		causal  bool
		splits  []int
	}
	cases := []cfg{
		{[]int32{1, 64, 65, 200}, 1, 16, false, []int{1, 3}},
		{[]int32{0, 130, 700}, 2, 16, true, []int{1, 4, 16}},
		{[]int32{300, 1, 64}, 1, 128, false, []int{2}},
	}
	if !testing.Short() {
		cases = append(cases, cfg{[]int32{4096, 1000}, 2, 128, true, []int{1, 8}})
	}
	for _, c := range cases {
		for _, splits := range c.splits {
			name := fmt.Sprintf("seqlens=%v/sq=%d/hq=%d/causal=%v/splits=%d", c.seqlens, c.sq, c.hq, c.causal, splits)
			t.Run(name, func(t *testing.T) {
				m := newMLACase(r, c.seqlens, c.sq, c.hq, c.causal)
				rows := m.SQ * m.HQ
				p := MLADecode{
					Batch: m.B, SeqQ: m.SQ, HeadsQ: m.HQ, MaxPages: m.MaxPages, SoftmaxScale: m.Scale,
					Causal: m.Causal, NumSplits: splits,
					Q: upload(t, ctx, m.Q).Ptr, KV: upload(t, ctx, m.KV).Ptr,
					BlockTable: upload(t, ctx, m.BlockTable).Ptr, CacheSeqlens: upload(t, ctx, m.Seqlens).Ptr,
					Workspace: alloc(t, ctx, MLAWorkspaceBytes(m.B, m.SQ, m.HQ, splits)).Ptr,
					Out:       alloc(t, ctx, m.B*rows*MLAHeadDimV*2).Ptr,
					LSE:       alloc(t, ctx, m.B*rows*4).Ptr,
				}
				if err := s.MLADecode(p); err != nil {
					t.Fatal(err)
				}
				if err := ctx.Synchronize(); err != nil {
					t.Fatal(err)
				}
				out := toF64(download[tensor.BF16](t, ctx, p.Out, m.B*rows*MLAHeadDimV))
				lse := toF64(download[f32](t, ctx, p.LSE, m.B*rows))
				refOut, refLSE := m.ref()
				var gotL, wantL []float64
				for i := range refLSE {
					switch {
					case math.IsInf(refLSE[i], 1):
						if !math.IsInf(lse[i], 1) {
							t.Fatalf("lse[%d] = %v, want +Inf (no keys)", i, lse[i])
						}
					case math.IsNaN(lse[i]) || math.IsInf(lse[i], 0):
						t.Fatalf("lse[%d] = %v (unwritten?)", i, lse[i])
					default:
						gotL, wantL = append(gotL, lse[i]), append(wantL, refLSE[i])
					}
				}
				for i, v := range out {
					if math.IsNaN(v) {
						t.Fatalf("out[%d] is NaN (unwritten?)", i)
					}
				}
				dOut, dLSE := calcDiff(out, refOut), calcDiff(gotL, wantL)
				maxL := 0.0
				for i := range gotL {
					maxL = max(maxL, math.Abs(gotL[i]-wantL[i]))
				}
				t.Logf("calc_diff out %.3g, lse %.3g, max |Δlse| %.3g", dOut, dLSE, maxL)
				if dOut >= 1e-5 || dLSE >= 1e-5 || maxL >= 1e-3 {
					t.Errorf("out calc_diff %.3g (gate 1e-5), lse calc_diff %.3g (gate 1e-5), max |Δlse| %.3g (gate 1e-3)", dOut, dLSE, maxL)
				}
			})
		}
	}
}

// DeepGEMM's benchmark (N, K) pairs for fp8_gemm_nt, and its M values.
var (
	benchNK = [][2]int{{2112, 7168}, {24576, 1536}, {32768, 512}, {7168, 16384}, {4096, 7168}, {7168, 2048}}
	benchM  = []int{64, 128, 4096}
)

// benchResult is one line of $FIREFLYER_GPU_RESULTS (JSON lines), merged
// with PyTorch's by scripts/gpu_table.py.
type benchResult struct {
	Kind   string  `json:"kind"`
	Impl   string  `json:"impl"`
	Shape  string  `json:"shape"`
	MS     float64 `json:"ms"`
	TFLOPS float64 `json:"tflops"`
	GBps   float64 `json:"gbps,omitempty"`
}

var resultsMu sync.Mutex

func record(b *testing.B, r benchResult) {
	b.ReportMetric(r.MS, "ms/launch")
	b.ReportMetric(r.TFLOPS, "TFLOPS")
	if r.GBps > 0 {
		b.ReportMetric(r.GBps, "GB/s")
	}
	path := os.Getenv("FIREFLYER_GPU_RESULTS")
	if path == "" {
		return
	}
	resultsMu.Lock()
	defer resultsMu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line, _ := json.Marshal(r)
	f.Write(append(line, '\n'))
}

// timeLaunches returns the device milliseconds per launch: after two
// warm-ups, three batches of b.N back-to-back launches are each timed
// between two events (so host-side queueing overlaps device work), and the
// median batch average is returned.
func timeLaunches(b *testing.B, ctx *cuda.Context, launch func() error) float64 {
	start, _ := ctx.NewEvent()
	stop, _ := ctx.NewEvent()
	defer start.Destroy()
	defer stop.Destroy()
	for range 2 {
		if err := launch(); err != nil {
			b.Fatal(err)
		}
	}
	if err := ctx.Synchronize(); err != nil {
		b.Fatal(err)
	}
	var ms []float64
	b.ResetTimer()
	for range 3 {
		if err := start.Record(nil); err != nil {
			b.Fatal(err)
		}
		for range b.N {
			if err := launch(); err != nil {
				b.Fatal(err)
			}
		}
		if err := stop.Record(nil); err != nil {
			b.Fatal(err)
		}
		if err := stop.Synchronize(); err != nil {
			b.Fatal(err)
		}
		e, err := stop.Elapsed(start)
		if err != nil {
			b.Fatal(err)
		}
		ms = append(ms, float64(e)/float64(b.N))
	}
	sort.Float64s(ms)
	return ms[1]
}

// randomE4M3 fills n bytes with random finite E4M3 values.
func randomE4M3(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			x := byte(v >> (8 * j))
			if x&0x7F == 0x7F {
				x ^= 1 // avoid NaN
			}
			b[i+j] = x & 0xBF // |x| < 2: keep sums far from overflow
		}
	}
	return b
}

func BenchmarkGPUFP8GemmNT(b *testing.B) {
	s := gpuSet(b)
	ctx := s.Context()
	r := testutilRNG(b)
	maxMK, maxNK, maxMN := 0, 0, 0
	for _, m := range benchM {
		for _, nk := range benchNK {
			maxMK, maxNK, maxMN = max(maxMK, m*nk[1]), max(maxNK, nk[0]*nk[1]), max(maxMN, m*nk[0])
		}
	}
	a := upload(b, ctx, randomE4M3(r, maxMK))
	bb := upload(b, ctx, randomE4M3(r, maxNK))
	scales := uniformScales(r, max(maxMK, maxNK)/128+1024)
	sa := upload(b, ctx, scales)
	sb := upload(b, ctx, scales)
	d := alloc(b, ctx, maxMN*2)
	for _, m := range benchM {
		for _, nk := range benchNK {
			n, k := nk[0], nk[1]
			shape := fmt.Sprintf("m=%d/n=%d/k=%d", m, n, k)
			b.Run(shape, func(b *testing.B) {
				p := FP8GemmNT{M: m, N: n, K: k, A: a.Ptr, SA: sa.Ptr, B: bb.Ptr, SB: sb.Ptr, D: d.Ptr, Out: tensor.BF16T}
				ms := timeLaunches(b, ctx, func() error { return s.FP8GemmNT(p) })
				record(b, benchResult{Kind: "gemm", Impl: "fireflyer", Shape: shape, MS: ms, TFLOPS: GemmFLOPs(m, n, k) / ms / 1e9})
			})
		}
	}
}

func uniformScales(r *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = 0.5 + 0.5*r.Float32()
	}
	return out
}

// BenchmarkGPUMLADecode times FlashMLA's benchmark shapes: batch 128,
// 4096 keys, h_q in {16, 128}, s_q in {1, 2} (causal when s_q = 2).
func BenchmarkGPUMLADecode(b *testing.B) {
	s := gpuSet(b)
	ctx := s.Context()
	r := testutilRNG(b)
	const batch, seqK = 128, 4096
	pagesPer := seqK / MLAPageSize
	pages := batch * pagesPer
	// A 32 MiB random block tiled over the cache: random, non-zero data.
	tile := make([]tensor.BF16, 16<<20)
	tensor.EncodeBF16(tile, testutilNormal(r, len(tile)))
	kvBytes := pages * MLAPageSize * MLAHeadDimQK * 2
	kv, err := ctx.Alloc(kvBytes)
	if err != nil {
		b.Fatal(err)
	}
	defer kv.Free()
	tb := tensor.Bytes(tile)
	for off := 0; off < kvBytes; off += len(tb) {
		if err := ctx.CopyHtoD(kv.Ptr.Add(off), tb[:min(len(tb), kvBytes-off)]); err != nil {
			b.Fatal(err)
		}
	}
	bt := make([]int32, pages)
	for i, p := range r.Perm(pages) {
		bt[i] = int32(p)
	}
	seqlens := slices.Repeat([]int32{seqK}, batch)
	btBuf, slBuf := upload(b, ctx, bt), upload(b, ctx, seqlens)
	for _, hq := range []int{16, 128} {
		for _, sq := range []int{1, 2} {
			shape := fmt.Sprintf("b=%d/sk=%d/hq=%d/sq=%d", batch, seqK, hq, sq)
			b.Run(shape, func(b *testing.B) {
				rows := sq * hq
				q := make([]tensor.BF16, batch*rows*MLAHeadDimQK)
				tensor.EncodeBF16(q, testutilNormal(r, len(q)))
				splits := SuggestSplits(ctx.Info().SMs, batch, sq, hq, pagesPer)
				p := MLADecode{
					Batch: batch, SeqQ: sq, HeadsQ: hq, MaxPages: pagesPer, SoftmaxScale: float32(1 / math.Sqrt(MLAHeadDimQK)),
					Causal: sq > 1, NumSplits: splits, Q: upload(b, ctx, q).Ptr, KV: kv.Ptr, BlockTable: btBuf.Ptr, CacheSeqlens: slBuf.Ptr,
					Workspace: alloc(b, ctx, MLAWorkspaceBytes(batch, sq, hq, splits)).Ptr,
					Out:       alloc(b, ctx, batch*rows*MLAHeadDimV*2).Ptr, LSE: alloc(b, ctx, batch*rows*4).Ptr,
				}
				ms := timeLaunches(b, ctx, func() error { return s.MLADecode(p) })
				flops := 2 * float64(batch) * float64(rows) * seqK * (MLAHeadDimQK + MLAHeadDimV)
				bytes := float64(kvBytes + len(q)*2 + batch*rows*MLAHeadDimV*2)
				record(b, benchResult{Kind: "mla", Impl: "fireflyer", Shape: shape, MS: ms, TFLOPS: flops / ms / 1e9, GBps: bytes / ms / 1e6})
			})
		}
	}
}
