package tensor_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

func TestHostStorage(t *testing.T) {
	h := tensor.HostOf([]float32{1, 2, 3, 4})
	if h.Len() != 4 || h.Location() != "host" {
		t.Fatalf("Len %d Location %q", h.Len(), h.Location())
	}
	if err := h.CopyIn(2, []float32{9, 8}); err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 3)
	if err := h.CopyOut(dst, 1); err != nil || !slices.Equal(dst, []float32{2, 9, 8}) {
		t.Fatalf("CopyOut = %v, %v", dst, err)
	}
	for _, c := range []struct{ off, n int }{{-1, 1}, {3, 2}, {5, 0}, {0, -1}} {
		if err := h.CopyIn(c.off, make([]float32, max(c.n, 0))); c.n >= 0 && !errors.Is(err, tensor.ErrShape) {
			t.Errorf("CopyIn(%d, %d): %v", c.off, c.n, err)
		}
		if err := tensor.CheckRange(4, c.off, c.n); !errors.Is(err, tensor.ErrShape) {
			t.Errorf("CheckRange(4, %d, %d): %v", c.off, c.n, err)
		}
	}
	s, err := tensor.HostSlice[float32](h)
	if err != nil || &s[0] != &h[0] {
		t.Fatalf("HostSlice copied or failed: %v", err)
	}
	if s, err := tensor.HostSlice[float32](nil); s != nil || err != nil {
		t.Fatalf("HostSlice(nil) = %v, %v", s, err)
	}
	d := testutil.Upload([]float32{1, 2})
	if _, err := tensor.HostSlice[float32](d); !errors.Is(err, tensor.ErrNotHost) {
		t.Fatalf("HostSlice(device) = %v, want ErrNotHost", err)
	}
	m, _ := tensor.QuantizePerToken([]float32{1, 2}, 1, 2, tensor.QuantOptions{})
	m.Data = testutil.Upload([]tensor.E4M3{1, 2})
	if err := m.Check(); err != nil {
		t.Fatalf("Check on device storage: %v", err)
	}
	for name, f := range map[string]func() error{
		"Host":       func() error { _, err := m.Host(); return err },
		"Dequantize": func() error { _, err := tensor.Dequantize(m); return err },
		"Stack":      func() error { _, err := tensor.Stack(m); return err },
		"Clone":      func() error { _, err := m.Clone(); return err },
		"Tensors":    func() error { _, _, err := m.Tensors(); return err },
	} {
		if err := f(); !errors.Is(err, tensor.ErrNotHost) {
			t.Errorf("%s on device storage: %v, want ErrNotHost", name, err)
		}
	}
}

func TestStackNil(t *testing.T) {
	m, _ := tensor.QuantizePerToken(make([]float32, 128), 1, 128, tensor.QuantOptions{})
	for _, ms := range [][]*tensor.FP8Matrix{nil, {nil}, {m, nil}} {
		if _, err := tensor.Stack(ms...); !errors.Is(err, tensor.ErrShape) {
			t.Errorf("Stack(%v) = %v, want ErrShape", ms, err)
		}
	}
}

// TestFP8FromTensors: a checkpoint's weight + weight_scale_inv pair, a
// stacked pair and a per-token pair load as operands that dequantize to the
// values they were quantized from, and Tensors inverts it.
func TestFP8FromTensors(t *testing.T) {
	r := testutil.RNG(3)
	x := testutil.Normal(r, 130*300, 0, 1)
	for _, opt := range []tensor.QuantOptions{{}, {UE8M0: true}} {
		for name, q := range map[string]func([]float32, int, int, tensor.QuantOptions) (*tensor.FP8Matrix, error){
			"block": tensor.QuantizePerBlock, "token": tensor.QuantizePerToken} {
			m, err := q(x, 130, 300, opt)
			if err != nil {
				t.Fatal(err)
			}
			w, s, err := m.Tensors()
			if err != nil {
				t.Fatal(err)
			}
			got, err := tensor.FP8FromTensors(w, s)
			if err != nil {
				t.Fatalf("%s ue8m0=%v: %v", name, opt.UE8M0, err)
			}
			if got.Rows != 130 || got.K != 300 || got.ScaleRows != m.ScaleRows || got.Format != m.Format {
				t.Fatalf("%s: layout %+v, want %+v", name, got, m)
			}
			want, _ := tensor.Dequantize(m)
			have, _ := tensor.Dequantize(got)
			if !slices.Equal(want, have) {
				t.Fatalf("%s: round trip changed values", name)
			}
			// Stacked: [2, 130, 300] with [2, ·, 3] scales.
			st, _ := tensor.Stack(m, m)
			w, s, err = st.Tensors()
			if err != nil || len(w.Shape) != 3 || w.Shape[0] != 2 || s.Shape[0] != 2 {
				t.Fatalf("stacked Tensors: %v %v %v", w, s, err)
			}
			if g, err := tensor.FP8FromTensors(w, s); err != nil || g.Groups != 2 || g.ScaleRows != m.ScaleRows {
				t.Fatalf("stacked FP8FromTensors: %+v, %v", g, err)
			}
		}
	}
	m, _ := tensor.QuantizePerBlock(x, 130, 300, tensor.QuantOptions{})
	w, s, _ := m.Tensors()
	bad := []struct {
		name string
		w, s *tensor.Tensor
		err  error
	}{
		{"nil", nil, s, tensor.ErrShape},
		{"weight dtype", s, s, tensor.ErrDType},
		{"scale dtype", w, w, tensor.ErrDType},
		{"scale rows", w, mustTensor(t, make([]float32, 3*3), 3, 3), tensor.ErrScales},
		{"scale cols", w, mustTensor(t, make([]float32, 2*2), 2, 2), tensor.ErrScales},
		{"rank", w, mustTensor(t, make([]float32, 6), 6), tensor.ErrShape},
		{"short data", &tensor.Tensor{DType: tensor.E4M3T, Shape: []int{130, 300}, Strides: []int{300, 1}, Data: make([]byte, 10)}, s, tensor.ErrShape},
	}
	for _, c := range bad {
		if _, err := tensor.FP8FromTensors(c.w, c.s); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
}

func mustTensor[T any](t *testing.T, s []T, shape ...int) *tensor.Tensor {
	t.Helper()
	x, err := tensor.FromSlice(s, shape...)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestRegroup: per-token rows split into groups (the masked GEMM's A),
// 128-row blocks merge (fused gate/up), and splits through a scale block or
// uneven splits are refused.
func TestRegroup(t *testing.T) {
	r := testutil.RNG(4)
	x := testutil.Normal(r, 6*200, 0, 1)
	m, _ := tensor.QuantizePerToken(x, 6, 200, tensor.QuantOptions{})
	g, err := m.Regroup(3)
	if err != nil || g.Groups != 3 || g.Rows != 2 {
		t.Fatalf("Regroup(3) = %+v, %v", g, err)
	}
	h, _ := g.Host()
	mh, _ := m.Host()
	if !slices.Equal(h.Row(2, 1), mh.Row(0, 5)) || h.Scale(2, 1, 1) != mh.Scale(0, 5, 1) {
		t.Fatal("group 2 row 1 is not row 5")
	}
	if _, err := m.Regroup(4); !errors.Is(err, tensor.ErrShape) {
		t.Fatalf("uneven Regroup: %v", err)
	}
	w, _ := tensor.QuantizePerBlock(testutil.Normal(r, 256*200, 0, 1), 256, 200, tensor.QuantOptions{})
	if _, err := w.Regroup(4); !errors.Is(err, tensor.ErrScales) {
		t.Fatalf("Regroup through a 128-row block: %v", err)
	}
	st, _ := tensor.Stack(w, w)
	fused, err := st.Regroup(1)
	if err != nil || fused.Rows != 512 {
		t.Fatalf("Regroup(1) of a stack: %+v, %v", fused, err)
	}
	a, _ := tensor.Dequantize(st)
	b, _ := tensor.Dequantize(fused)
	if !slices.Equal(a, b) {
		t.Fatal("fused operand dequantizes differently")
	}
	c, err := fused.Clone()
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := c.Host()
	fh, _ := fused.Host()
	if &ch.Data[0] == &fh.Data[0] || !slices.Equal(ch.Data, fh.Data) {
		t.Fatal("Clone shares or changes data")
	}
}

// TestFP8MatrixNilMethods: the methods that return an error report a nil
// matrix as ErrShape, as Check does, instead of dereferencing it.
func TestFP8MatrixNilMethods(t *testing.T) {
	var m *tensor.FP8Matrix
	if _, err := m.Host(); !errors.Is(err, tensor.ErrShape) {
		t.Errorf("nil.Host(): err %v; want ErrShape", err)
	}
	if c, err := m.Clone(); c != nil || !errors.Is(err, tensor.ErrShape) {
		t.Errorf("nil.Clone() = %v, %v; want nil, ErrShape", c, err)
	}
}
