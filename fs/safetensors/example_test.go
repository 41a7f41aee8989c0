package safetensors_test

import (
	"context"
	"fmt"
	"os"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/safetensors"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Write a checkpoint with an FP8 weight and its scales, then read it back.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "st-example")
	defer os.RemoveAll(dir)
	c, _ := fs.Open(ctx, dir)
	defer c.Close()

	w8 := make([]tensor.E4M3, 4)
	tensor.EncodeE4M3(w8, []float32{0.5, -1, 2, 448})
	weight, _ := tensor.FromSlice(w8, 2, 2)
	scale, _ := tensor.FromSlice([]float32{0.25}, 1)

	wr := safetensors.NewWriter(c, "model.safetensors", &safetensors.Options{Atomic: true})
	wr.Add("layer.0.weight", weight)
	wr.Add("layer.0.weight_scale_inv", scale)
	wr.SetMetadata("format", "pt")
	if err := wr.Close(ctx); err != nil {
		fmt.Println(err)
		return
	}

	f, err := safetensors.Open(ctx, c, "model.safetensors", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	for _, ti := range f.Header.Tensors {
		fmt.Println(ti.Name, ti.DType, ti.Shape)
	}
	t, _ := f.Tensor("layer.0.weight")
	vals := make([]float32, 4)
	tensor.DecodeE4M3(vals, t.E4M3s())
	fmt.Println(vals, f.Metadata()["format"])
	// Output:
	// layer.0.weight_scale_inv F32 [1]
	// layer.0.weight F8_E4M3 [2 2]
	// [0.5 -1 2 448] pt
}
