package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fireflyer-go/fireflyer/tensor"
)

func TestDecodeE4M3AllCodes(t *testing.T) {
	forEachSet(t, func(t *testing.T, ks Set) {
		src := make([]tensor.E4M3, 256+37)
		for i := range src {
			src[i] = tensor.E4M3(i * 7)
		}
		dst := make([]float32, len(src))
		ks.DecodeE4M3Rows(dst, len(dst), src, len(src), 1, len(src))
		for i, b := range src {
			want := tensor.E4M3(b).Float32()
			got := dst[i]
			if math.IsNaN(float64(want)) != math.IsNaN(float64(got)) || !math.IsNaN(float64(want)) && math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("code %#x: got %g (%#x), want %g", b, got, math.Float32bits(got), want)
			}
		}
	})
}

func TestMicro(t *testing.T) {
	forEachSet(t, func(t *testing.T, ks Set) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, kc := range []int{0, 1, 3, 16, 128, 131} {
			mr, nr := ks.MR(), ks.NR()
			ldb, ldc := kc+5, mr+3
			a := make([]float32, kc*mr)
			b := make([]float32, (nr-1)*ldb+kc)
			c := make([]float32, (nr-1)*ldc+mr)
			sa, sb := make([]float32, mr), make([]float32, nr)
			for _, s := range [][]float32{a, b, c, sa, sb} {
				for i := range s {
					s[i] = float32(r.NormFloat64())
				}
			}
			want := make([]float64, len(c))
			for j := 0; j < nr; j++ {
				for i := 0; i < mr; i++ {
					var s float64
					for p := 0; p < kc; p++ {
						s += float64(a[p*mr+i]) * float64(b[j*ldb+p])
					}
					want[j*ldc+i] = float64(c[j*ldc+i]) + float64(sa[i])*float64(sb[j])*s
				}
			}
			ks.Micro(kc, a, b, ldb, c, ldc, sa, sb)
			for j := 0; j < nr; j++ {
				for i := 0; i < mr; i++ {
					if d := math.Abs(float64(c[j*ldc+i]) - want[j*ldc+i]); d > 1e-4*(1+math.Abs(want[j*ldc+i]))*math.Sqrt(float64(kc+1)) {
						t.Fatalf("kc=%d c[%d,%d] = %g, want %g", kc, i, j, c[j*ldc+i], want[j*ldc+i])
					}
				}
				for i := mr; i < ldc && j < nr-1; i++ {
					_ = i // gap columns are not written: checked by the padding below
				}
			}
		}
	})
}

// TestMicroPanels checks a column of micro-tiles against a float64 oracle,
// the C rows between and after the panels' rows left as they were.
func TestMicroPanels(t *testing.T) {
	forEachSet(t, func(t *testing.T, ks Set) {
		r := rand.New(rand.NewPCG(3, 4))
		mr, nr := ks.MR(), ks.NR()
		for _, panels := range []int{1, 2, 5} {
			for _, kc := range []int{0, 1, 3, 128, 131} {
				m := panels * mr
				ldb, ldc := kc+5, m+3
				a := make([]float32, panels*kc*mr)
				b := make([]float32, (nr-1)*ldb+kc)
				c := make([]float32, (nr-1)*ldc+m+3)
				sa, sb := make([]float32, m), make([]float32, nr)
				for _, s := range [][]float32{a, b, c, sa, sb} {
					for i := range s {
						s[i] = float32(r.NormFloat64())
					}
				}
				want := make([]float64, len(c))
				for i, v := range c {
					want[i] = float64(v)
				}
				for j := 0; j < nr; j++ {
					for i := 0; i < m; i++ {
						q, ii := i/mr, i%mr
						var s float64
						for p := 0; p < kc; p++ {
							s += float64(a[q*kc*mr+p*mr+ii]) * float64(b[j*ldb+p])
						}
						want[j*ldc+i] += float64(sa[i]) * float64(sb[j]) * s
					}
				}
				ks.MicroPanels(kc, panels, a, b, ldb, c, ldc, sa, sb)
				for i, v := range c {
					if d := math.Abs(float64(v) - want[i]); d > 1e-4*(1+math.Abs(want[i]))*math.Sqrt(float64(kc+1)) {
						t.Fatalf("panels=%d kc=%d c[%d] = %g, want %g", panels, kc, i, v, want[i])
					}
				}
			}
		}
	})
}

func BenchmarkMicro(b *testing.B) {
	ks := Best()
	kc := 128
	mr, nr := ks.MR(), ks.NR()
	a := make([]float32, kc*mr)
	bb := make([]float32, nr*kc)
	c := make([]float32, nr*mr)
	s := make([]float32, 64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ks.Micro(kc, a, bb, kc, c, mr, s, s)
	}
	b.ReportMetric(float64(2*kc*mr*nr)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkPeak(b *testing.B) {
	ks := Best()
	var f float64
	for i := 0; i < b.N; i++ {
		f += ks.PeakLoop(1000)
	}
	b.ReportMetric(f/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func TestDecodeRows(t *testing.T) {
	forEachSet(t, func(t *testing.T, ks Set) {
		for _, c := range []struct{ kc, seed int }{{1, 11}, {16, 11}, {100, 11}, {128, 11}, {128, 0}, {144, 0}} {
			kc := c.kc
			rows, lds, ldd := 5, 300, 150
			src := make([]tensor.E4M3, (rows-1)*lds+kc)
			for i := range src {
				src[i] = tensor.E4M3(i*37 + c.seed)
				if c.seed == 0 && (src[i]&0x7F) == 0x7F && i/lds != 2 {
					src[i] = 0x7E // NaN only in row 2: other rows take the fast path
				}
			}
			dst := make([]float32, (rows-1)*ldd+kc)
			ks.DecodeE4M3Rows(dst, ldd, src, lds, rows, kc)
			for r := 0; r < rows; r++ {
				for p := 0; p < kc; p++ {
					want, got := src[r*lds+p].Float32(), dst[r*ldd+p]
					if math.Float32bits(want) != math.Float32bits(got) && !(want != want && got != got) {
						t.Fatalf("kc=%d [%d,%d]: %g want %g", kc, r, p, got, want)
					}
				}
			}
		}
	})
}

func TestTranspose(t *testing.T) {
	forEachSet(t, func(t *testing.T, ks Set) {
		for _, s := range [][2]int{{16, 16}, {32, 48}, {37, 21}, {5, 3}, {64, 17}} {
			rows, cols := s[0], s[1]
			lds, ldd := rows+3, cols+5
			src := make([]float32, (cols-1)*lds+rows)
			for i := range src {
				src[i] = float32(i)
			}
			dst := make([]float32, (rows-1)*ldd+cols)
			ks.Transpose(dst, ldd, src, lds, rows, cols)
			for i := 0; i < rows; i++ {
				for j := 0; j < cols; j++ {
					if dst[i*ldd+j] != src[j*lds+i] {
						t.Fatalf("%v: dst[%d,%d] = %g, want %g", s, i, j, dst[i*ldd+j], src[j*lds+i])
					}
				}
			}
		}
	})
}

func TestEncodeBF16(t *testing.T) {
	forEachSet(t, func(t *testing.T, ks Set) {
		special := []float32{0, -0, 1, -1, 1.00390625, 1.01171875, 3.3895314e38, 3.4028235e38, -3.4028235e38,
			float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), math.Float32frombits(0xFF800001),
			1e-40, -1e-45, 65504, 0.1, 1.0 / 3}
		r := rand.New(rand.NewPCG(5, 6))
		src := append([]float32{}, special...)
		for i := 0; i < 1000; i++ {
			src = append(src, math.Float32frombits(r.Uint32()))
		}
		dst := make([]tensor.BF16, len(src))
		ks.EncodeBF16(dst, src)
		for i, v := range src {
			if want := tensor.BF16FromFloat32(v); dst[i] != want {
				t.Fatalf("%g (%#x): got %#x, want %#x", v, math.Float32bits(v), dst[i], want)
			}
		}
	})
}

// TestProbeMicro measures the micro-kernel on L2-resident panels in thread
// CPU time against the same level's FMA peak loop; it runs only with
// GEMM_PROBE=1 (the best level) or GEMM_PROBE=avx2 (or another level name).
func TestProbeMicro(t *testing.T) {
	probe := os.Getenv("GEMM_PROBE")
	if probe == "" {
		t.Skip("set GEMM_PROBE=1 (or a level name) to measure the micro-kernel")
	}
	ks := Best()
	if probe != "1" {
		var err error
		if ks, err = ForName(probe); err != nil {
			t.Skip(err)
		}
	}
	if ks.Level() == Generic {
		t.Skip("the generic level has no peak loop")
	}
	runtime.LockOSThread()
	pk := 0.0
	for r := 0; r < 5; r++ {
		t0 := threadTime()
		f := ks.PeakLoop(2000000)
		pk = max(pk, f/(threadTime()-t0)/1e9)
	}
	runtime.UnlockOSThread()
	t.Logf("%s FMA peak loop: %.1f GFLOP/s (thread CPU time)", ks, pk)
	kc := 128
	MR, NR := ks.MR(), ks.NR()
	a := make([]float32, kc*MR*8)
	bb := make([]float32, NR*16*128)
	c := make([]float32, NR*16*256)
	s := make([]float32, 512)
	for _, v := range []bool{false, true} {
		runtime.LockOSThread()
		best := 1e9
		for r := 0; r < 10; r++ {
			t0 := threadTime()
			for i := 0; i < 2000; i++ {
				for jp := 0; jp < 16; jp++ {
					for ip := 0; ip < 8; ip++ {
						ks.Micro(kc, a[ip*kc*MR:], bb[jp*NR*128:], 128, c[jp*NR*256+ip*MR:], 256, s, s)
					}
				}
			}
			best = min(best, threadTime()-t0)
		}
		runtime.UnlockOSThread()
		g := 2000 * 16 * 8 * float64(2*kc*MR*NR) / best / 1e9
		t.Logf("run %v: %.1f GFLOP/s (thread CPU time), %.0f%% of the peak loop", v, g, 100*g/pk)
	}
}

func threadTime() float64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return float64(ts.Sec) + float64(ts.Nsec)*1e-9
}

// benchSets runs f as a sub-benchmark for each level this machine runs.
func benchSets(b *testing.B, f func(b *testing.B, ks Set)) {
	for _, ks := range sets() {
		b.Run(ks.String(), func(b *testing.B) { f(b, ks) })
	}
}

// e4m3Codes returns n codes of normal-distributed values quantized to
// E4M3 at amax 448 (what the GEMM operands hold), no NaN codes.
func e4m3Codes(n int) []tensor.E4M3 {
	r := rand.New(rand.NewPCG(7, 8))
	src := make([]tensor.E4M3, n)
	for i := range src {
		src[i] = tensor.E4M3FromFloat32(float32(r.NormFloat64() * 100))
	}
	return src
}

// BenchmarkDecodeRows decodes a 192×128 block of E4M3 rows (one B block of
// a GEMM tile) into float32; it reports decoded elements per nanosecond.
func BenchmarkDecodeRows(b *testing.B) {
	const rows, kc, lds = 192, 128, 7168
	src := e4m3Codes((rows-1)*lds + kc)
	dst := make([]float32, rows*kc)
	benchSets(b, func(b *testing.B, ks Set) {
		for i := 0; i < b.N; i++ {
			ks.DecodeE4M3Rows(dst, kc, src, lds, rows, kc)
		}
		b.ReportMetric(float64(rows*kc)*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "elem/ns")
	})
}

// BenchmarkTranspose transposes a 128×16 block (one A panel of the AVX2
// GEMM) and a 256×192 C tile; it reports elements per nanosecond.
func BenchmarkTranspose(b *testing.B) {
	for _, s := range [][2]int{{128, 16}, {256, 192}} {
		rows, cols := s[0], s[1]
		src := make([]float32, rows*cols)
		dst := make([]float32, rows*cols)
		b.Run(fmt.Sprintf("%dx%d", rows, cols), func(b *testing.B) {
			benchSets(b, func(b *testing.B, ks Set) {
				for i := 0; i < b.N; i++ {
					ks.Transpose(dst, cols, src, rows, rows, cols)
				}
				b.ReportMetric(float64(rows*cols)*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "elem/ns")
			})
		})
	}
}

// BenchmarkEncodeBF16 encodes one 192-column output row to BF16.
func BenchmarkEncodeBF16(b *testing.B) {
	src := make([]float32, 192)
	for i := range src {
		src[i] = float32(i) * 1.37
	}
	dst := make([]tensor.BF16, len(src))
	benchSets(b, func(b *testing.B, ks Set) {
		for i := 0; i < b.N; i++ {
			ks.EncodeBF16(dst, src)
		}
		b.ReportMetric(float64(len(src))*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "elem/ns")
	})
}

// FuzzGemmHelpers holds every level's E4M3 row decoder, BF16 encoder and
// transpose to the generic twin, bit for bit, on arbitrary bytes: the
// bytes are the E4M3 codes (rows of kc codes, kc from the first byte), then
// float32 bit patterns for the encoder and the transpose.
func FuzzGemmHelpers(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{7, 0x7F, 0xFF, 0x80, 0x00, 0x01, 0x81, 0x7E, 0xFE})
	seed := make([]byte, 700)
	for i := range seed {
		seed[i] = byte(i*37 + 11)
	}
	f.Add(seed)
	nan := make([]byte, 300)
	for i := range nan {
		nan[i] = byte(i)
		if i%64 == 5 {
			nan[i] = 0x7F
		}
	}
	f.Add(nan)
	var gen Set
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		kc := 1 + int(data[0])%160
		codes := make([]tensor.E4M3, len(data)-1)
		for i, b := range data[1:] {
			codes[i] = tensor.E4M3(b)
		}
		rows := len(codes) / kc
		words := make([]float32, len(data)/4)
		for i := range words {
			words[i] = math.Float32frombits(uint32(data[4*i]) | uint32(data[4*i+1])<<8 | uint32(data[4*i+2])<<16 | uint32(data[4*i+3])<<24)
		}
		same := func(a, b float32) bool {
			return math.Float32bits(a) == math.Float32bits(b) || a != a && b != b
		}
		for _, ks := range sets() {
			if rows > 0 {
				got, want := make([]float32, rows*(kc+1)), make([]float32, rows*(kc+1))
				ks.DecodeE4M3Rows(got, kc+1, codes, kc, rows, kc)
				gen.DecodeE4M3Rows(want, kc+1, codes, kc, rows, kc)
				for i := range got {
					if !same(got[i], want[i]) {
						t.Fatalf("%s DecodeE4M3Rows kc=%d rows=%d [%d]: %v, generic %v", ks, kc, rows, i, got[i], want[i])
					}
				}
			}
			gb, wb := make([]tensor.BF16, len(words)), make([]tensor.BF16, len(words))
			ks.EncodeBF16(gb, words)
			gen.EncodeBF16(wb, words)
			for i := range gb {
				if gb[i] != wb[i] {
					t.Fatalf("%s EncodeBF16(%#x): %#x, generic %#x", ks, math.Float32bits(words[i]), gb[i], wb[i])
				}
			}
			if r := 1 + int(data[1])%40; len(words) >= r {
				c := len(words) / r
				got, want := make([]float32, r*c), make([]float32, r*c)
				ks.Transpose(got, c, words, r, r, c)
				gen.Transpose(want, c, words, r, r, c)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s Transpose %dx%d [%d]: %#x, generic %#x", ks, r, c, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
					}
				}
			}
		}
	})
}
