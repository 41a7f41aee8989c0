package kernels

import (
	"fmt"
	"unsafe"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// e2m1Pairs holds the two float32 values of every packed E2M1 byte, even
// element first, built from tensor's E2M1 decoder (the one definition).
var e2m1Pairs [256][2]float32

// e2m1Table holds the float32 value of every E2M1 code in code order (0..7
// the magnitudes, 8..15 their negatives): the lookup table of the assembly
// decoders, built from tensor's E2M1 decoder too.
var e2m1Table [16]float32

func init() {
	for i := range e2m1Pairs {
		e2m1Pairs[i][0], e2m1Pairs[i][1] = tensor.E2M1x2(i).Float32s()
	}
	for i := range e2m1Table {
		e2m1Table[i] = tensor.E2M1(i).Float32()
	}
}

// DecodeE2M1Row decodes one row of packed FP4 (E2M1) values with its block
// scales into float32: dst[k] = e2m1(k)·scales[k/sk] for k < len(dst), the
// even element of each byte of src first (tensor.E2M1x2's order). len(dst)
// must be even, src hold len(dst)/2 bytes and scales ceil(len(dst)/sk)
// values; sk is even and positive. It panics otherwise (a caller bug). It
// is the B decoder of gemm/cpu's FP8×FP4 GEMMs. Every product is the one
// float32 multiplication e2m1·scale (exact for power-of-two scales, one
// rounding otherwise), so all levels agree bit for bit: the AVX512, AVX2
// and NEON levels run an assembly table lookup in the code table times the
// block's scale (VPERMPS on amd64, TBL on byte planes on arm64) when sk is
// a multiple of 16, and the pure-Go loop for the last len(dst) mod 16
// elements; the generic level, and other sk, run the pure-Go loop.
func (s Set) DecodeE2M1Row(dst []float32, src []tensor.E2M1x2, scales []float32, sk int) {
	n := len(dst)
	if n%2 != 0 || sk <= 0 || sk%2 != 0 || len(src) < n/2 || len(scales) < (n+sk-1)/sk {
		panic(fmt.Sprintf("kernels: DecodeE2M1Row bounds len(dst)=%d len(src)=%d len(scales)=%d sk=%d", n, len(src), len(scales), sk))
	}
	if n == 0 {
		return
	}
	if !s.SIMDE2M1() || sk%16 != 0 {
		decodeE2M1Go(dst, src, scales, sk)
		return
	}
	dec := decodeE2M1AVX2
	switch s.level {
	case AVX512:
		dec = decodeE2M1AVX512
	case NEON:
		dec = decodeE2M1NEON
	}
	full := n / sk // whole blocks
	if full > 0 {
		dec(&dst[0], (*byte)(&src[0]), &scales[0], &e2m1Table[0], full, sk)
	}
	lo := full * sk
	if m := (n - lo) &^ 15; m > 0 { // the last, partial block's multiple of 16
		dec(&dst[lo], (*byte)(&src[lo/2]), &scales[full], &e2m1Table[0], 1, m)
		lo += m
	}
	if lo < n { // fewer than 16 elements, all in block full
		decodeE2M1Go(dst[lo:], src[lo/2:], scales[full:], sk)
	}
}

// SIMDE2M1 reports whether DecodeE2M1Row runs assembly at the Set's level
// (AVX512, AVX2, NEON) for block sizes that are multiples of 16, rather
// than the pure-Go loop (generic).
func (s Set) SIMDE2M1() bool { return s.level == AVX512 || s.level == AVX2 || s.level == NEON }

// decodeE2M1Go is DecodeE2M1Row in Go (arguments checked by the caller,
// len(dst) > 0): the twin that defines the assembly decoders' results.
func decodeE2M1Go(dst []float32, src []tensor.E2M1x2, scales []float32, sk int) {
	n := len(dst)
	d := unsafe.Pointer(unsafe.SliceData(dst))
	p := unsafe.Pointer(unsafe.SliceData(src))
	for lo, b := 0, 0; lo < n; lo, b = lo+sk, b+1 {
		sc := scales[b]
		i, end := lo/2, min(lo+sk, n)/2
		for ; i+4 <= end; i += 4 {
			w := *(*uint32)(unsafe.Add(p, i))
			o := (*[8]float32)(unsafe.Add(d, 8*i))
			v := &e2m1Pairs[uint8(w)]
			o[0] = v[0] * sc
			o[1] = v[1] * sc
			v = &e2m1Pairs[uint8(w>>8)]
			o[2] = v[0] * sc
			o[3] = v[1] * sc
			v = &e2m1Pairs[uint8(w>>16)]
			o[4] = v[0] * sc
			o[5] = v[1] * sc
			v = &e2m1Pairs[uint8(w>>24)]
			o[6] = v[0] * sc
			o[7] = v[1] * sc
		}
		for ; i < end; i++ {
			v := &e2m1Pairs[*(*uint8)(unsafe.Add(p, i))]
			o := (*[2]float32)(unsafe.Add(d, 8*i))
			o[0] = v[0] * sc
			o[1] = v[1] * sc
		}
	}
}
