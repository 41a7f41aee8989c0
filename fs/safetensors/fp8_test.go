package safetensors_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/safetensors"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// TestFP8: a weight and its weight_scale_inv, written as a checkpoint
// stores them, load back as the operand they came from.
func TestFP8(t *testing.T) {
	ctx := context.Background()
	c, err := fs.Open(ctx, "", fs.WithBackend("mem"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, _ := tensor.QuantizePerBlock(testutil.Normal(testutil.RNG(8), 200*300, 0, 1), 200, 300, tensor.QuantOptions{})
	w, s, err := m.Tensors()
	if err != nil {
		t.Fatal(err)
	}
	entries := []safetensors.Entry{{Name: "l.weight", Tensor: w}, {Name: "l.weight_scale_inv", Tensor: s}}
	if err := safetensors.Write(ctx, c, "w.safetensors", entries, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(ctx, c, "w.safetensors", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.FP8("l.weight", "l.weight_scale_inv")
	if err != nil {
		t.Fatal(err)
	}
	if got.Rows != 200 || got.K != 300 || got.ScaleRows != 128 {
		t.Fatalf("layout %+v", got)
	}
	a, _ := tensor.Dequantize(m)
	b, _ := tensor.Dequantize(got)
	if !slices.Equal(a, b) {
		t.Fatal("loaded operand differs")
	}
	if _, err := f.FP8("l.weight", "missing"); !errors.Is(err, safetensors.ErrNotFound) {
		t.Fatalf("missing scales: %v", err)
	}
	if _, err := f.FP8("l.weight_scale_inv", "l.weight"); !errors.Is(err, tensor.ErrDType) {
		t.Fatalf("swapped names: %v", err)
	}
}

// TestFP8UnalignedScales: scales at an offset not aligned for float32 are
// copied, not viewed in place.
func TestFP8UnalignedScales(t *testing.T) {
	js := `{"w":{"dtype":"F8_E4M3","shape":[1,3],"data_offsets":[0,3]},"s":{"dtype":"F32","shape":[1,1],"data_offsets":[3,7]}}`
	for len(js)%8 != 0 {
		js += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	b = append(b, js...)
	b = append(b, 0x38, 0x40, 0xB8) // 1, 2, -1 in E4M3
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(0.5))
	f, err := safetensors.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.FP8("w", "s")
	if err != nil {
		t.Fatal(err)
	}
	d, err := tensor.Dequantize(m)
	if err != nil || !slices.Equal(d, []float32{0.5, 1, -0.5}) {
		t.Fatalf("Dequantize = %v, %v", d, err)
	}
}
