package p2p

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/fireflyer-go/fireflyer/pipeline"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// FuzzDecodeHeader feeds arbitrary header words to the receiver's parser:
// it must never panic, and whatever it accepts must describe a payload of
// at most MaxMessage bytes that matches its dtype and shape, and encode
// back to the same header.
func FuzzDecodeHeader(f *testing.F) {
	for _, m := range []*tensor.Tensor{f32([]int{3, 4}, 0), f32(nil, 1), f32([]int{0, 5}, 0)} {
		h, err := encodeHeader(pipeline.Tag{Phase: 1, Kind: pipeline.Gradient, Micro: 7}, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h []byte) {
		if len(h) < fixedHdr {
			return
		}
		ndim := binary.LittleEndian.Uint64(h[40:])
		if ndim > MaxDims || len(h) < fixedHdr+8*int(ndim) {
			return
		}
		h = h[:fixedHdr+8*int(ndim)]
		tag, m, err := decodeHeader(h)
		if err != nil {
			return
		}
		n, err := tensor.NumElements(m.Shape)
		if err != nil || len(m.Data) != n*m.DType.Size() || len(m.Data) > MaxMessage {
			t.Fatalf("accepted %v %v with %d bytes", m.DType, m.Shape, len(m.Data))
		}
		back, err := encodeHeader(tag, m)
		if err != nil {
			t.Fatalf("re-encoding %v %v %v: %v", tag, m.DType, m.Shape, err)
		}
		if fmt.Sprint(back) != fmt.Sprint(h) {
			t.Fatalf("header does not round-trip")
		}
	})
}
