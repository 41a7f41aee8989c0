package tensor

import "fmt"

// hostScaled resolves the three storages of a block-scaled operand (the
// elements, float32 scales, UE8M0 scales) to host slices: the body of
// FP8Matrix.Host and FP4Matrix.Host. A nil storage gives a nil slice.
// Errors wrap ErrNotHost and name the field.
func hostScaled[E any](data Storage[E], sf Storage[float32], su Storage[UE8M0]) ([]E, []float32, []UE8M0, error) {
	d, err := HostSlice(data)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("field Data: %w", err)
	}
	f, err := HostSlice(sf)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("field ScalesF32: %w", err)
	}
	u, err := HostSlice(su)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("field ScalesUE8M0: %w", err)
	}
	return d, f, u, nil
}

// scaledOperand is what stackScaled needs of FP8Matrix and FP4Matrix.
type scaledOperand[M any, E any] interface {
	*M
	Check() error
	NumGroups() int
	// sameLayout reports whether the operand has the shape and scale
	// layout of o (Rows, K, the scale block and Format).
	sameLayout(o *M) bool
	// hostRows resolves the operand and returns its row count, its rows
	// (group 0) and its scales.
	hostRows() (rows int, row func(r int) []E, sf []float32, su []UE8M0, err error)
}

// stackScaled is the loop of Stack and StackFP4: it checks that ms holds
// at least one operand, none nil, each valid, single-group and laid out as
// ms[0], and concatenates their rows and scales. Errors: a *FieldError
// wrapping ErrShape, an operand's Check error, or one wrapping ErrNotHost.
func stackScaled[M any, E any, P scaledOperand[M, E]](ms []P) (data []E, sf []float32, su []UE8M0, err error) {
	if len(ms) == 0 {
		return nil, nil, nil, fieldErr("ms", ErrShape, "no matrices")
	}
	for i, m := range ms {
		if m == nil {
			return nil, nil, nil, fieldErr("ms", ErrShape, "matrix %d is nil", i)
		}
	}
	for i, m := range ms {
		if err := m.Check(); err != nil {
			return nil, nil, nil, err
		}
		if g := m.NumGroups(); g != 1 {
			return nil, nil, nil, fieldErr("ms", ErrShape, "matrix %d has %d groups, want 1", i, g)
		}
		if !m.sameLayout((*M)(ms[0])) {
			return nil, nil, nil, fieldErr("ms", ErrShape, "matrix %d differs from matrix 0 in shape or scale layout", i)
		}
		rows, row, f, u, err := m.hostRows()
		if err != nil {
			return nil, nil, nil, err
		}
		for r := range rows {
			data = append(data, row(r)...)
		}
		sf = append(sf, f...)
		su = append(su, u...)
	}
	return data, sf, su, nil
}

func (m *FP8Matrix) sameLayout(o *FP8Matrix) bool {
	return m.Rows == o.Rows && m.K == o.K && m.ScaleRows == o.ScaleRows && m.Format == o.Format
}

func (m *FP8Matrix) hostRows() (int, func(int) []E4M3, []float32, []UE8M0, error) {
	h, err := m.Host()
	if err != nil || m.K == 0 {
		return 0, nil, h.ScalesF32, h.ScalesUE8M0, err
	}
	return m.Rows, func(r int) []E4M3 { return h.Row(0, r) }, h.ScalesF32, h.ScalesUE8M0, nil
}

func (m *FP4Matrix) sameLayout(o *FP4Matrix) bool {
	return m.Rows == o.Rows && m.K == o.K && m.ScaleK == o.ScaleK && m.Format == o.Format
}

func (m *FP4Matrix) hostRows() (int, func(int) []E2M1x2, []float32, []UE8M0, error) {
	h, err := m.Host()
	if err != nil || m.K == 0 {
		return 0, nil, h.ScalesF32, h.ScalesUE8M0, err
	}
	return m.Rows, func(r int) []E2M1x2 { return h.Row(0, r) }, h.ScalesF32, h.ScalesUE8M0, nil
}
