package kernels

import (
	"fmt"
	"sync"
)

// Block sizes of SgemmNT: rows of A per packed block, columns of B per
// block and the K depth per pass.
const (
	sgemmMC = 256
	sgemmNC = 240
	sgemmKC = 256
)

type sgemmWork struct {
	apack, bpad, ct, ones []float32
}

var sgemmPool = sync.Pool{New: func() any { return new(sgemmWork) }}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// PackAT packs rows [0, rows) of a (row stride lda), K range [k0, k0+kc),
// into panels of MR rows laid out [kc][MR], zero-padding rows beyond rows:
// dst[(i/MR)*kc*MR + p*MR + i%MR] = a[i*lda+k0+p]. dst needs
// ceil(rows/MR)*MR*kc elements.
func PackAT(dst, a []float32, lda, rows, k0, kc int) {
	mr := MR
	for ip := 0; ip*mr < rows; ip++ {
		panel := dst[ip*mr*kc : (ip+1)*mr*kc]
		for i := 0; i < mr; i++ {
			r := ip*mr + i
			if r >= rows {
				for p := 0; p < kc; p++ {
					panel[p*mr+i] = 0
				}
				continue
			}
			src := a[r*lda+k0 : r*lda+k0+kc]
			for p, v := range src {
				panel[p*mr+i] = v
			}
		}
	}
}

// SgemmNT computes C += A·Bᵀ in float32 for A [m,k] (row stride lda), B
// [n,k] (row stride ldb) and C [m,n] (row stride ldc), on the calling
// goroutine, with the selected micro-kernel. It panics on bad dimensions (a
// caller bug). It is the reusable entry for packages that need a plain
// SGEMM (e.g. attention score products).
func SgemmNT(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 || lda < k || ldb < k || ldc < n ||
		(m > 0 && k > 0 && len(a) < (m-1)*lda+k) || (n > 0 && k > 0 && len(b) < (n-1)*ldb+k) || (m > 0 && n > 0 && len(c) < (m-1)*ldc+n) {
		panic(fmt.Sprintf("kernels: SgemmNT bad arguments m=%d n=%d k=%d lda=%d ldb=%d ldc=%d", m, n, k, lda, ldb, ldc))
	}
	if m == 0 || n == 0 || k == 0 {
		return
	}
	w := sgemmPool.Get().(*sgemmWork)
	defer sgemmPool.Put(w)
	mr, nr := MR, NR
	w.ones = grow(w.ones, max(mr, nr))
	for i := range w.ones {
		w.ones[i] = 1
	}
	for m0 := 0; m0 < m; m0 += sgemmMC {
		mc := min(sgemmMC, m-m0)
		mp := (mc + mr - 1) / mr * mr
		for n0 := 0; n0 < n; n0 += sgemmNC {
			nc := min(sgemmNC, n-n0)
			np := (nc + nr - 1) / nr * nr
			w.ct = grow(w.ct, np*mp)
			clear(w.ct)
			for k0 := 0; k0 < k; k0 += sgemmKC {
				kc := min(sgemmKC, k-k0)
				w.apack = grow(w.apack, mp*kc)
				PackAT(w.apack, a[m0*lda:], lda, mc, k0, kc)
				for jp := 0; jp < np; jp += nr {
					bp, ld := b[(n0+jp)*ldb+k0:], ldb
					if jp+nr > nc { // tail: zero-padded copy of the last rows
						w.bpad = grow(w.bpad, nr*kc)
						clear(w.bpad)
						for j := 0; jp+j < nc; j++ {
							copy(w.bpad[j*kc:(j+1)*kc], b[(n0+jp+j)*ldb+k0:])
						}
						bp, ld = w.bpad, kc
					}
					for ip := 0; ip < mp; ip += mr {
						Micro(kc, w.apack[ip*kc:], bp, ld, w.ct[jp*mp+ip:], mp, w.ones, w.ones)
					}
				}
			}
			for i := 0; i < mc; i++ {
				row := c[(m0+i)*ldc+n0 : (m0+i)*ldc+n0+nc]
				for j := range row {
					row[j] += w.ct[j*mp+i]
				}
			}
		}
	}
}
