package safetensors_test

import (
	"context"
	"fmt"
	"os"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/safetensors"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Read one tensor, and a byte range of another, straight into a registered
// buffer: only the header and those bytes are read, with no copy after.
func ExampleReader_ReadInto() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "st-reader")
	defer os.RemoveAll(dir)
	c, _ := fs.Open(ctx, dir)
	defer c.Close()
	bias, _ := tensor.FromSlice([]float32{1, 2, 3, 4}, 4)
	big, _ := tensor.FromSlice(make([]float32, 1<<16), 1<<8, 1<<8)
	safetensors.Write(ctx, c, "m.safetensors", []safetensors.Entry{{Name: "bias", Tensor: bias}, {Name: "big", Tensor: big}}, nil)

	r, err := safetensors.OpenReader(ctx, c, "m.safetensors", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	buf, _ := c.NewBuffer(4096, fs.BufferOpts{})
	defer buf.Close()
	reg, _ := buf.Region(0, 8) // elements 1 and 2 of bias
	if err := r.ReadInto(ctx, "bias", 4, reg); err != nil {
		fmt.Println(err)
		return
	}
	part := &tensor.Tensor{DType: tensor.F32, Shape: []int{2}, Strides: []int{1}, Data: reg.Bytes()}
	fmt.Println(part.F32())
	t, tb, _ := r.ReadTensor(ctx, "bias")
	defer tb.Close()
	fmt.Println(t.Shape, t.F32())
	// Output:
	// [2 3]
	// [4] [1 2 3 4]
}
