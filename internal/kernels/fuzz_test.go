package kernels

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// FuzzCodecTwins feeds arbitrary bytes, read as E4M3 codes, BF16 and F16
// values and float32 bit patterns (NaN, Inf, subnormals and rounding ties
// included), to the codec and combine kernels of every level this machine
// runs, and requires the generic twins' results bit for bit (NaN payloads
// aside). The seeds run in the normal test run.
func FuzzCodecTwins(f *testing.F) {
	f.Add([]byte{0x7F, 0xFF, 0x80, 0x00, 0x01, 0x08}, uint8(3))
	seed := make([]byte, 200)
	for i := range seed {
		seed[i] = byte(i * 37)
	}
	f.Add(seed, uint8(1))
	f.Add(append(seed, seed...), uint8(7))
	var gen Set
	f.Fuzz(func(t *testing.T, data []byte, nrows uint8) {
		codes := make([]tensor.E4M3, len(data))
		for i, b := range data {
			codes[i] = tensor.E4M3(b)
		}
		h := make([]uint16, len(data)/2)
		for i := range h {
			h[i] = binary.LittleEndian.Uint16(data[2*i:])
		}
		fl := make([]float32, len(data)/4)
		for i := range fl {
			fl[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		bf := make([]tensor.BF16, len(h))
		hf := make([]tensor.F16, len(h))
		for i, v := range h {
			bf[i], hf[i] = tensor.BF16(v), tensor.F16(v)
		}
		w := float32(0.37)
		if len(fl) > 0 {
			w = fl[0]
		}
		rows := make([][]tensor.BF16, 1+int(nrows%8))
		for r := range rows {
			rows[r] = make([]tensor.BF16, len(bf))
			for i := range bf {
				rows[r][i] = bf[(i+r)%len(bf)]
			}
		}
		for _, ks := range sets() {
			if ks.Level() == Generic {
				continue
			}
			run := func(s Set) [][]uint32 {
				var out [][]uint32
				d := make([]float32, len(codes))
				s.DecodeE4M3Rows(d, len(d), codes, len(codes), 1, len(codes))
				out = append(out, bits(d))
				b := make([]float32, len(bf))
				s.CvtBF16(b, bf)
				out = append(out, bits(b))
				c := make([]float32, len(hf))
				s.CvtF16(c, hf)
				out = append(out, bits(c))
				acc := make([]float32, len(bf))
				copy(acc, fl)
				s.AxpyBF16(acc, w, bf)
				out = append(out, bits(acc))
				tb := make([]tensor.BF16, len(fl))
				s.ToBF16(tb, fl)
				sum := make([]tensor.BF16, len(bf))
				s.SumBF16(sum, rows)
				u := make([]uint32, 0, len(tb)+len(sum))
				for _, v := range tb {
					u = append(u, uint32(v))
				}
				for _, v := range sum {
					u = append(u, uint32(v))
				}
				return append(out, u)
			}
			got, want := run(ks), run(gen)
			for k, name := range []string{"DecodeE4M3Rows", "CvtBF16", "CvtF16", "AxpyBF16", "ToBF16+SumBF16"} {
				cmp(t, ks.String()+" "+name, len(data), got[k], want[k])
			}
		}
	})
}
