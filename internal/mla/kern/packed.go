package kern

import "runtime"

// Blocking of GemmPacked: a packed kc×nr panel of B (32 KiB at nr=64) stays
// in L1 while the mc×kc block of A (read in place) streams from L1/L2, and
// the packed kc×nc slab of B, reused across A blocks, stays in L2.
const (
	packKC = 128
	packMC = 64
	packNC = 512
)

// GemmPacked computes C[m][n] = A[m][k]·B[k][n] (row-major, leading
// dimensions lda, ldb, ldc) with Goto-style cache blocking and packing of B, rows split over GOMAXPROCS goroutines. It is the
// compute anchor of the mla benchmarks ("the fastest float32 GEMM in the
// repo"); it uses the same micro-kernels as Gemm, so it needs m%4 == 0 and
// n%64 == 0 (n%16 == 0 at the AVX2 level) to run them and falls back to Gemm
// otherwise.
func GemmPacked(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	nr := nrFor()
	if nr == 0 || m%4 != 0 || n%nr != 0 || k == 0 {
		Gemm(m, n, k, a, lda, 1, b, ldb, c, ldc, false)
		return
	}
	_ = a[(m-1)*lda+k-1]
	_ = b[(k-1)*ldb+n-1]
	_ = c[(m-1)*ldc+n-1]
	w := min(runtime.GOMAXPROCS(0), max(m/16, 1))
	rowsPer := ((m+w-1)/w + 3) &^ 3
	done := make(chan struct{}, w)
	started := 0
	for r0 := 0; r0 < m; r0 += rowsPer {
		rows := min(rowsPer, m-r0)
		started++
		go func() {
			gemmPackedRows(rows, n, k, a[r0*lda:], lda, b, ldb, c[r0*ldc:], ldc, nr)
			done <- struct{}{}
		}()
	}
	for range started {
		<-done
	}
}

func gemmPackedRows(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, nr int) {
	bp := make([]float32, packKC*packNC)
	for jc := 0; jc < n; jc += packNC {
		nc := min(packNC, n-jc)
		for pc := 0; pc < k; pc += packKC {
			kc := min(packKC, k-pc)
			// B slab [kc][nc] → nc/nr panels of [kc][nr].
			for jb := 0; jb < nc; jb += nr {
				panel := bp[jb*kc : (jb+nr)*kc]
				for kk := range kc {
					copy(panel[kk*nr:(kk+1)*nr], b[(pc+kk)*ldb+jc+jb:])
				}
			}
			for ic := 0; ic < m; ic += packMC {
				mc := min(packMC, m-ic)
				// A is read in place: the micro-kernel broadcasts from four
				// row streams, and the mc×kc block stays in L1/L2 across jb.
				for jb := 0; jb < nc; jb += nr {
					for ib := 0; ib < mc; ib += 4 {
						microKernel(nr, kc, a[(ic+ib)*lda+pc:], lda, 1, bp[jb*kc:], nr, c[(ic+ib)*ldc+jc+jb:], ldc, pc > 0)
					}
				}
			}
		}
	}
}
