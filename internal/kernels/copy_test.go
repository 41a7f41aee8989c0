package kernels

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestStreamCopy checks StreamCopy at every level this machine runs
// against copy: lengths from 0 to past a few blocks and some large ones,
// every destination and source alignment within 64 bytes, the bytes
// around the destination untouched, and overlapping buffers (where it
// must be copy, forwards and backwards).
func TestStreamCopy(t *testing.T) { forEachSet(t, testStreamCopy) }

func testStreamCopy(t *testing.T, ks Set) {
	rng := rand.New(rand.NewPCG(7, 8))
	buf := make([]byte, 1<<20+1024)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	lengths := []int{0, 1, 31, 127, 255, 256, 257, 383, 384, 1000, 4096, 7168, 7392, 65536 + 77, 1 << 20}
	for _, n := range lengths {
		for da := 0; da < 64; da += 1 + 4*(n>>16) {
			for _, sa := range []int{0, 1, 17, 32, 63} {
				src := buf[sa : sa+n]
				got := make([]byte, n+128)
				want := make([]byte, n+128)
				for i := range got {
					got[i], want[i] = 0xee, 0xee
				}
				if c := ks.StreamCopy(got[da:da+n], src); c != n {
					t.Fatalf("n=%d: copied %d", n, c)
				}
				copy(want[da:da+n], src)
				if !bytes.Equal(got, want) {
					t.Fatalf("n=%d dst align %d src align %d: bytes differ from copy", n, da, sa)
				}
			}
		}
	}
	// Shorter destination or source: min of the two.
	if c := ks.StreamCopy(make([]byte, 300), buf[:1000]); c != 300 {
		t.Errorf("short dst: %d", c)
	}
	if c := ks.StreamCopy(make([]byte, 1000), buf[:300]); c != 300 {
		t.Errorf("short src: %d", c)
	}
	// Overlap both ways.
	for _, shift := range []int{-200, 200} {
		a := append([]byte(nil), buf[:8192]...)
		b := append([]byte(nil), buf[:8192]...)
		lo, hi := 1000, 1000+shift
		ks.StreamCopy(a[hi:hi+4096], a[lo:lo+4096])
		copy(b[hi:hi+4096], b[lo:lo+4096])
		if !bytes.Equal(a, b) {
			t.Errorf("overlap shift %d: differs from copy", shift)
		}
	}
}

// BenchmarkStreamCopy gathers 11,000 rows of 7,168 bytes (one rank's
// share of a 4-rank DeepEP dispatch) from random rows of a 4,096-row
// source into one contiguous destination, with copy and with StreamCopy
// at the best level, in bytes per second of destination.
func BenchmarkStreamCopy(b *testing.B) {
	const row, rows = 7168, 11000
	src := make([]byte, 4096*row)
	dst := make([]byte, rows*row)
	for i := range src {
		src[i] = byte(i)
	}
	clear(dst)
	rng := rand.New(rand.NewPCG(1, 2))
	idx := make([]int, rows)
	for i := range idx {
		idx[i] = rng.IntN(4096)
	}
	for _, name := range []string{"copy", "stream"} {
		b.Run(name, func(b *testing.B) {
			ks := Best()
			b.SetBytes(int64(len(dst)))
			for i := 0; i < b.N; i++ {
				for j, t := range idx {
					d, s := dst[j*row:(j+1)*row], src[t*row:(t+1)*row]
					if name == "copy" {
						copy(d, s)
					} else {
						ks.StreamCopy(d, s)
					}
				}
			}
		})
	}
}
