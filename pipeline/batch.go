package pipeline

import (
	"fmt"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// ScatterBatch splits batch into n micro-batches along dimension dim, as
// upstream's step does with its inputs and labels (dualpipe/utils.py
// scatter, which calls torch.tensor_split): the first L mod n parts get
// ⌈L/n⌉ rows of the L along dim and the others ⌊L/n⌋, so there are always
// exactly n parts, some empty when L < n. Each part is a new contiguous
// tensor (a copy). batch must be a contiguous host tensor. Errors wrap
// ErrParam.
func ScatterBatch(batch *tensor.Tensor, n, dim int) ([]*tensor.Tensor, error) {
	if err := checkBatchTensor(batch, "batch"); err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("%w: %d micro-batches", ErrParam, n)
	}
	if dim < 0 || dim >= len(batch.Shape) {
		return nil, fmt.Errorf("%w: batch dimension %d of a %d-dimensional tensor %v", ErrParam, dim, len(batch.Shape), batch.Shape)
	}
	outer, inner := 1, batch.DType.Size()
	for _, d := range batch.Shape[:dim] {
		outer *= d
	}
	for _, d := range batch.Shape[dim+1:] {
		inner *= d
	}
	l := batch.Shape[dim]
	parts := make([]*tensor.Tensor, n)
	start := 0
	for i := range parts {
		rows := l / n
		if i < l%n {
			rows++
		}
		shape := append([]int(nil), batch.Shape...)
		shape[dim] = rows
		data := make([]byte, outer*rows*inner)
		for o := 0; o < outer; o++ {
			copy(data[o*rows*inner:(o+1)*rows*inner], batch.Data[(o*l+start)*inner:(o*l+start+rows)*inner])
		}
		parts[i] = &tensor.Tensor{DType: batch.DType, Shape: shape, Strides: tensor.ContiguousStrides(shape), Data: data}
		start += rows
	}
	return parts, nil
}

// GatherBatch concatenates parts along dimension dim (torch.cat, upstream's
// gather of the returned outputs) into a new contiguous tensor. Every part
// must be a contiguous host tensor of the same dtype and rank, agreeing on
// every dimension but dim. Errors wrap ErrParam.
func GatherBatch(parts []*tensor.Tensor, dim int) (*tensor.Tensor, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: no parts to gather", ErrParam)
	}
	for i, p := range parts {
		if err := checkBatchTensor(p, fmt.Sprint("part ", i)); err != nil {
			return nil, err
		}
	}
	first := parts[0]
	if dim < 0 || dim >= len(first.Shape) {
		return nil, fmt.Errorf("%w: batch dimension %d of a %d-dimensional tensor %v", ErrParam, dim, len(first.Shape), first.Shape)
	}
	l := 0
	for i, p := range parts {
		if p.DType != first.DType || len(p.Shape) != len(first.Shape) {
			return nil, fmt.Errorf("%w: part %d is %v %v, part 0 is %v %v", ErrParam, i, p.DType, p.Shape, first.DType, first.Shape)
		}
		for d := range p.Shape {
			if d != dim && p.Shape[d] != first.Shape[d] {
				return nil, fmt.Errorf("%w: part %d has shape %v, part 0 %v (they may differ only in dimension %d)", ErrParam, i, p.Shape, first.Shape, dim)
			}
		}
		l += p.Shape[dim]
	}
	shape := append([]int(nil), first.Shape...)
	shape[dim] = l
	out, err := tensor.New(first.DType, shape...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrParam, err)
	}
	outer, inner := 1, first.DType.Size()
	for _, d := range shape[:dim] {
		outer *= d
	}
	for _, d := range shape[dim+1:] {
		inner *= d
	}
	start := 0
	for _, p := range parts {
		rows := p.Shape[dim]
		for o := 0; o < outer; o++ {
			copy(out.Data[(o*l+start)*inner:(o*l+start+rows)*inner], p.Data[o*rows*inner:(o+1)*rows*inner])
		}
		start += rows
	}
	return out, nil
}

func checkBatchTensor(t *tensor.Tensor, what string) error {
	if t == nil {
		return fmt.Errorf("%w: %s is nil", ErrParam, what)
	}
	if t.DType.Size() == 0 {
		return fmt.Errorf("%w: %s has dtype %v", ErrParam, what, t.DType)
	}
	n, err := tensor.NumElements(t.Shape)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrParam, what, err)
	}
	if t.Strides != nil {
		want := tensor.ContiguousStrides(t.Shape)
		if len(t.Strides) != len(t.Shape) {
			return fmt.Errorf("%w: %s has %d strides for shape %v", ErrParam, what, len(t.Strides), t.Shape)
		}
		for i, d := range t.Shape {
			if d > 1 && t.Strides[i] != want[i] {
				return fmt.Errorf("%w: %s with strides %v is not contiguous", ErrParam, what, t.Strides)
			}
		}
	}
	if len(t.Data) < n*t.DType.Size() {
		return fmt.Errorf("%w: %s %v %v needs %d bytes of host data, has %d", ErrParam, what, t.DType, t.Shape, n*t.DType.Size(), len(t.Data))
	}
	return nil
}
