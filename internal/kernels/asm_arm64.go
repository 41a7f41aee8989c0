//go:build arm64 && !noasm

package kernels

import "github.com/fireflyer-go/fireflyer/tensor"

// neonBuild reports whether this build has the arm64 NEON assembly (the
// amd64 assembly is asmBuild's).
const neonBuild = true

// The NEON kernels (*_arm64.s), the twins of the amd64 ones. The counts n
// are multiples of the vector width each kernel's comment gives.

//go:noescape
func microNEON(kc int, a, b *float32, ldb int, c *float32, ldc int, sa, sb *float32)

//go:noescape
func decodeE4M3NEON(dst *float32, src *byte, n int)

//go:noescape
func decodeE2M1NEON(dst *float32, src *byte, scales, tab *float32, blocks, sk int)

//go:noescape
func peakNEON(n int)

//go:noescape
func cvtBF16NEON(dst *uint16, src *float32, n int)

//go:noescape
func transposeNEON(dst *float32, ldd int, src *float32, lds int, rows, cols int)

//go:noescape
func kern4x16neon(k int, a *float32, ars, aks int, b *float32, ldb int, c *float32, ldc int, acc bool)

//go:noescape
func cvtBF16x8neon(dst *float32, src *uint16, n int)

//go:noescape
func cvtF16x8neon(dst *float32, src *uint16, n int)

//go:noescape
func dotx16neon(a, b *float32, n int) float32

//go:noescape
func axpyx16neon(alpha float32, x, y *float32, n int)

//go:noescape
func scalx16neon(alpha float32, x *float32, n int)

//go:noescape
func maxIntox16neon(dst, src *float32, n int)

//go:noescape
func exp2Subx4neon(x, sh, acc *float32, n int, coef *float32)

//go:noescape
func qkBF16x8neon(q *float32, base *uint16, offs *int64, n, d int, s *float32)

//go:noescape
func pvBF16x32neon(o, p *float32, base *uint16, offs *int64, n, dv int)

//go:noescape
func axpyBF16NEON(acc *float32, w float32, src *tensor.BF16, n int)

//go:noescape
func toBF16NEON(dst *tensor.BF16, src *float32, n int)

//go:noescape
func sumBF16NEON(dst *tensor.BF16, rows *[]tensor.BF16, nrows int, n int)
