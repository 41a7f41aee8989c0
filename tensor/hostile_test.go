package tensor

import (
	"errors"
	"math"
	"math/big"
	"testing"
)

// TestHostileSizes pins what New and Check do with sizes whose byte count or
// furthest offset overflows int: an ErrShape error, never a wrapped-around
// length that Check would then accept.
func TestHostileSizes(t *testing.T) {
	t.Run("New/bytes-overflow", func(t *testing.T) {
		// 2^61 float64 elements is 2^64 bytes: the byte count wraps to 0.
		x, err := New(F64, 1<<(strconvIntSize-3))
		if !errors.Is(err, ErrShape) {
			t.Fatalf("New(F64, 2^%d) = %d bytes, err %v; want ErrShape", strconvIntSize-3, len(x.Data), err)
		}
	})
	t.Run("New/beyond-address-space", func(t *testing.T) {
		// Far more bytes than any machine can address: an error, not a
		// makeslice panic or a fatal out-of-memory. (On 32-bit platforms
		// MaxInt/2 bytes is 1 GiB, a size New should attempt.)
		if strconvIntSize == 32 {
			t.Skip("32-bit: MaxInt/2 bytes is allocatable")
		}
		if _, err := New(U8, math.MaxInt/2); !errors.Is(err, ErrShape) {
			t.Fatalf("New(U8, MaxInt/2): err %v; want ErrShape", err)
		}
	})
	t.Run("NumElements/MaxInt", func(t *testing.T) {
		if n, err := NumElements([]int{math.MaxInt}); err != nil || n != math.MaxInt {
			t.Fatalf("NumElements([MaxInt]) = %d, %v", n, err)
		}
		if _, err := NumElements([]int{math.MaxInt, 2}); !errors.Is(err, ErrShape) {
			t.Fatalf("NumElements([MaxInt 2]): err %v; want ErrShape", err)
		}
	})
	t.Run("Check/stride-overflow", func(t *testing.T) {
		// Offset (2−1)·2^62 elements · 4 bytes wraps to a tiny byte count.
		x := &Tensor{DType: F32, Shape: []int{2}, Strides: []int{1 << (strconvIntSize - 2)}, Data: make([]byte, 4)}
		if err := x.Check(); !errors.Is(err, ErrShape) {
			t.Fatalf("Check with stride 2^%d over 4 bytes: %v; want ErrShape", strconvIntSize-2, err)
		}
		y := &Tensor{DType: F32, Shape: []int{3, 3}, Strides: []int{math.MaxInt / 2, math.MaxInt / 2}, Data: make([]byte, 4)}
		if err := y.Check(); !errors.Is(err, ErrShape) {
			t.Fatalf("Check with strides MaxInt/2: %v; want ErrShape", err)
		}
	})
	t.Run("IsContiguous/malformed", func(t *testing.T) {
		x := &Tensor{DType: F32, Shape: []int{2, 3}, Strides: []int{1}, Data: make([]byte, 24)}
		if x.IsContiguous() {
			t.Fatal("IsContiguous with 1 stride for 2 dims = true")
		}
	})
}

const strconvIntSize = 32 << (^uint(0) >> 63) // 32 or 64

// FuzzCheck: Check never panics, and when it accepts a tensor the furthest
// element lies inside Data (so typed views can index every element).
func FuzzCheck(f *testing.F) {
	f.Add(uint8(F32), 2, 3, 3, 1, 24)
	f.Add(uint8(F32), 2, 1<<62, 1, 1, 4)
	f.Add(uint8(F64), 1<<61, 1, 1, 1, 0)
	f.Add(uint8(BF16T), 0, -1, 5, 7, 3)
	f.Fuzz(func(t *testing.T, dt uint8, d0, s0, d1, s1, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		x := &Tensor{DType: DType(dt), Shape: []int{d0, d1}, Strides: []int{s0, s1}, Data: make([]byte, n)}
		if x.Check() != nil {
			return
		}
		if d0 == 0 || d1 == 0 {
			return
		}
		// The byte just past the furthest element, in exact arithmetic.
		end := new(big.Int).Mul(big.NewInt(int64(d0-1)), big.NewInt(int64(s0)))
		end.Add(end, new(big.Int).Mul(big.NewInt(int64(d1-1)), big.NewInt(int64(s1))))
		end.Add(end, big.NewInt(1))
		end.Mul(end, big.NewInt(int64(x.DType.Size())))
		if end.Sign() <= 0 || end.Cmp(big.NewInt(int64(n))) > 0 {
			t.Fatalf("Check accepted %v strides %v over %d bytes (needs %v)", x.Shape, x.Strides, n, end)
		}
	})
}
