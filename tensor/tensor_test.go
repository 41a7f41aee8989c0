package tensor

import (
	"errors"
	"fmt"
	"testing"
)

func TestNewAndViews(t *testing.T) {
	x, err := New(BF16T, 2, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	if x.Len() != 24 || len(x.Data) != 48 || !x.IsContiguous() {
		t.Fatalf("len %d, bytes %d, contiguous %v", x.Len(), len(x.Data), x.IsContiguous())
	}
	if fmt.Sprint(x.Strides) != "[12 4 1]" {
		t.Fatalf("strides %v", x.Strides)
	}
	v := x.BF16s()
	v[5] = BF16FromFloat32(2.5)
	if x.Data[10] != 0x20 || x.Data[11] != 0x40 { // 2.5 = 0x4020, little-endian
		t.Fatalf("view does not alias storage: % x", x.Data[10:12])
	}
	if err := x.Check(); err != nil {
		t.Fatal(err)
	}
	f := []float32{1, 2, 3, 4, 5, 6}
	y, err := FromSlice(f, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	y.F32()[4] = 9
	if f[4] != 9 || y.DType != F32 {
		t.Fatal("FromSlice must not copy")
	}
}

func TestErrors(t *testing.T) {
	if _, err := New(Invalid, 2); !errors.Is(err, ErrDType) {
		t.Errorf("New(Invalid): %v", err)
	}
	if _, err := New(F32, 2, -1); !errors.Is(err, ErrShape) {
		t.Errorf("New(-1): %v", err)
	}
	if _, err := New(F32, int(^uint(0)>>1), 2); !errors.Is(err, ErrShape) {
		t.Errorf("overflow: %v", err)
	}
	if _, err := FromSlice([]float32{1, 2, 3}, 2, 2); !errors.Is(err, ErrShape) {
		t.Errorf("FromSlice mismatch: %v", err)
	}
	if _, err := FromSlice([]string{"a"}, 1); !errors.Is(err, ErrDType) {
		t.Errorf("FromSlice string: %v", err)
	}
	short := &Tensor{DType: F32, Shape: []int{2, 2}, Strides: []int{2, 1}, Data: make([]byte, 12)}
	if err := short.Check(); !errors.Is(err, ErrShape) {
		t.Errorf("short storage: %v", err)
	}
	strided := &Tensor{DType: F32, Shape: []int{2, 2}, Strides: []int{4, 1}, Data: make([]byte, 24)}
	if err := strided.Check(); err != nil || strided.IsContiguous() {
		t.Errorf("strided: %v, contiguous %v", err, strided.IsContiguous())
	}
	if _, err := ParseDType("F9"); !errors.Is(err, ErrDType) {
		t.Errorf("ParseDType: %v", err)
	}
	for _, dt := range []DType{F32, F64, BF16T, F16T, E4M3T, E5M2T, UE8M0T, I32, I64, U8} {
		back, err := ParseDType(dt.String())
		if err != nil || back != dt {
			t.Errorf("ParseDType(%q) = %v, %v", dt.String(), back, err)
		}
	}
}

func Example() {
	q := E4M3FromFloat32(3.3) // nearest E4M3 is 3.25
	fmt.Println(q.Float32(), E4M3FromFloat32(1000).Float32(), E4M3FromFloat32Torch(1000).IsNaN())
	s := UE8M0Ceil(5.0 / 448) // power-of-two scale for a block whose amax is 5
	fmt.Println(s.Float32())
	// Output:
	// 3.25 448 true
	// 0.015625
}
