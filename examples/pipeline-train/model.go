package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// mlp is one pipeline stage in float32, upstream's example stage:
// Linear(h, f, no bias) → GELU (tanh form) → Linear(f, h, no bias), with a
// manual backward whose weight gradient is deferred to BackwardWeight (as
// upstream's WeightGradStore defers it). Payloads are row-major [rows, h]
// float32 tensors. Per micro-batch it keeps what the backward needs; the
// weight gradients of its micro-batches accumulate in call order.
type mlp struct {
	h, f   int
	w1, w2 []float32 // [f, h], [h, f]
	g1, g2 []float32 // accumulated weight gradients
	saved  map[int]*saved
}

type saved struct {
	rows        int
	x, a, g, dy []float32
	da          []float32
	backward    bool
}

// newMLP returns stage number stage of the model seeded with seed: every
// process builds the same weights.
func newMLP(h, f int, seed uint64, stage int) *mlp {
	r := rand.New(rand.NewPCG(seed, uint64(stage)+1))
	m := &mlp{h: h, f: f, w1: make([]float32, f*h), w2: make([]float32, h*f),
		g1: make([]float32, f*h), g2: make([]float32, h*f), saved: map[int]*saved{}}
	for i := range m.w1 {
		m.w1[i] = float32(r.NormFloat64() / math.Sqrt(float64(h)))
	}
	for i := range m.w2 {
		m.w2[i] = float32(r.NormFloat64() / math.Sqrt(float64(f)))
	}
	return m
}

const geluK = 0.7978845608028654 // sqrt(2/π)

func gelu(a float32) float32 {
	x := float64(a)
	return float32(0.5 * x * (1 + math.Tanh(geluK*(x+0.044715*x*x*x))))
}

func geluGrad(a float32) float32 {
	x := float64(a)
	t := math.Tanh(geluK * (x + 0.044715*x*x*x))
	return float32(0.5*(1+t) + 0.5*x*(1-t*t)*geluK*(1+3*0.044715*x*x))
}

func rowsOf(t *tensor.Tensor, h int) (int, error) {
	if t == nil || t.DType != tensor.F32 || len(t.Shape) != 2 || t.Shape[1] != h {
		return 0, fmt.Errorf("payload is not a float32 [rows, %d] tensor", h)
	}
	return t.Shape[0], nil
}

func f32Tensor(v []float32, rows, cols int) *tensor.Tensor {
	t, _ := tensor.FromSlice(v, rows, cols)
	return t
}

// Forward computes y = W2·GELU(W1·x) for a [rows, h] micro-batch and
// keeps what the backward needs.
func (m *mlp) Forward(_ context.Context, micro int, in *tensor.Tensor) (*tensor.Tensor, error) {
	rows, err := rowsOf(in, m.h)
	if err != nil {
		return nil, err
	}
	if _, dup := m.saved[micro]; dup {
		return nil, fmt.Errorf("micro-batch %d forwarded twice", micro)
	}
	x := in.F32()
	s := &saved{rows: rows, x: x, a: make([]float32, rows*m.f), g: make([]float32, rows*m.f)}
	y := make([]float32, rows*m.h)
	for i := 0; i < rows; i++ {
		for j := 0; j < m.f; j++ {
			var acc float32
			for k := 0; k < m.h; k++ {
				acc += x[i*m.h+k] * m.w1[j*m.h+k]
			}
			s.a[i*m.f+j] = acc
			s.g[i*m.f+j] = gelu(acc)
		}
		for l := 0; l < m.h; l++ {
			var acc float32
			for j := 0; j < m.f; j++ {
				acc += s.g[i*m.f+j] * m.w2[l*m.f+j]
			}
			y[i*m.h+l] = acc
		}
	}
	m.saved[micro] = s
	return f32Tensor(y, rows, m.h), nil
}

// BackwardInput returns dL/dx for the micro-batch from dL/dy.
func (m *mlp) BackwardInput(_ context.Context, micro int, gradOut *tensor.Tensor) (*tensor.Tensor, error) {
	s, ok := m.saved[micro]
	if !ok || s.backward {
		return nil, fmt.Errorf("micro-batch %d: backward without forward", micro)
	}
	if rows, err := rowsOf(gradOut, m.h); err != nil || rows != s.rows {
		return nil, fmt.Errorf("micro-batch %d: output gradient is not [%d, %d]", micro, s.rows, m.h)
	}
	dy := gradOut.F32()
	s.backward, s.dy = true, dy
	s.da = make([]float32, s.rows*m.f)
	dx := make([]float32, s.rows*m.h)
	for i := 0; i < s.rows; i++ {
		for j := 0; j < m.f; j++ {
			var acc float32
			for l := 0; l < m.h; l++ {
				acc += dy[i*m.h+l] * m.w2[l*m.f+j]
			}
			s.da[i*m.f+j] = acc * geluGrad(s.a[i*m.f+j])
		}
		for k := 0; k < m.h; k++ {
			var acc float32
			for j := 0; j < m.f; j++ {
				acc += s.da[i*m.f+j] * m.w1[j*m.h+k]
			}
			dx[i*m.h+k] = acc
		}
	}
	return f32Tensor(dx, s.rows, m.h), nil
}

// BackwardWeight accumulates the micro-batch's weight gradients.
func (m *mlp) BackwardWeight(_ context.Context, micro int) error {
	s, ok := m.saved[micro]
	if !ok || !s.backward {
		return fmt.Errorf("micro-batch %d: weight gradient before input gradient", micro)
	}
	for l := 0; l < m.h; l++ {
		for j := 0; j < m.f; j++ {
			var acc float32
			for i := 0; i < s.rows; i++ {
				acc += s.dy[i*m.h+l] * s.g[i*m.f+j]
			}
			m.g2[l*m.f+j] += acc
		}
	}
	for j := 0; j < m.f; j++ {
		for k := 0; k < m.h; k++ {
			var acc float32
			for i := 0; i < s.rows; i++ {
				acc += s.da[i*m.f+j] * s.x[i*m.h+k]
			}
			m.g1[j*m.h+k] += acc
		}
	}
	delete(m.saved, micro)
	return nil
}

// sgd applies w −= lr·g with the given gradients and zeroes the stage's own.
func (m *mlp) sgd(lr float32, g1, g2 []float32) {
	for i := range m.w1 {
		m.w1[i] -= lr * g1[i]
	}
	for i := range m.w2 {
		m.w2[i] -= lr * g2[i]
	}
	clear(m.g1)
	clear(m.g2)
}

// mse is the criterion: mean squared error in float32 and its gradient.
func mse(out, label *tensor.Tensor) (float64, *tensor.Tensor, error) {
	if out.DType != tensor.F32 || label.DType != tensor.F32 || len(out.Data) != len(label.Data) {
		return 0, nil, fmt.Errorf("output %v %v does not match label %v %v", out.DType, out.Shape, label.DType, label.Shape)
	}
	y, l := out.F32(), label.F32()
	g := make([]float32, len(y))
	n := float32(len(y))
	var loss float32
	for i := range y {
		d := y[i] - l[i]
		loss += d * d
		g[i] = 2 * d / n
	}
	gt, _ := tensor.FromSlice(g, out.Shape...)
	return float64(loss / n), gt, nil
}

// batch returns step's inputs and labels, [rows, h] each: every process
// draws the same ones.
func batch(seed uint64, step, rows, h int) (x, y *tensor.Tensor) {
	r := rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, uint64(step)))
	xs, ys := make([]float32, rows*h), make([]float32, rows*h)
	for i := range xs {
		xs[i] = float32(r.NormFloat64())
		ys[i] = float32(r.NormFloat64())
	}
	return f32Tensor(xs, rows, h), f32Tensor(ys, rows, h)
}
