package kernels

import (
	"fmt"
	"unsafe"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// e2m1Pairs holds the two float32 values of every packed E2M1 byte, even
// element first, built from tensor's E2M1 decoder (the one definition).
var e2m1Pairs [256][2]float32

func init() {
	for i := range e2m1Pairs {
		e2m1Pairs[i][0], e2m1Pairs[i][1] = tensor.E2M1x2(i).Float32s()
	}
}

// DecodeE2M1Row decodes one row of packed FP4 (E2M1) values with its block
// scales into float32: dst[k] = e2m1(k)·scales[k/sk] for k < len(dst), the
// even element of each byte of src first (tensor.E2M1x2's order). len(dst)
// must be even, src hold len(dst)/2 bytes and scales ceil(len(dst)/sk)
// values; sk is even and positive. It panics otherwise (a caller bug). It
// is the B decoder of gemm/cpu's FP8×FP4 GEMMs; every level runs the same
// pure-Go loop (exact for power-of-two scales, one float32 rounding
// otherwise).
func (s Set) DecodeE2M1Row(dst []float32, src []tensor.E2M1x2, scales []float32, sk int) {
	n := len(dst)
	if n%2 != 0 || sk <= 0 || sk%2 != 0 || len(src) < n/2 || len(scales) < (n+sk-1)/sk {
		panic(fmt.Sprintf("kernels: DecodeE2M1Row bounds len(dst)=%d len(src)=%d len(scales)=%d sk=%d", n, len(src), len(scales), sk))
	}
	if n == 0 {
		return
	}
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
