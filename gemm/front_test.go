package gemm_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	_ "github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// limited is ref with narrower Caps; it counts the calls that reach it.
type limited struct {
	*ref.Backend
	caps  gemm.Caps
	calls *int
}

func (l limited) Caps() gemm.Caps { return l.caps }
func (l limited) GemmNT(ctx context.Context, a, b *tensor.FP8Matrix, d *gemm.Out) error {
	*l.calls++
	return gemm.FP8GemmNT(ctx, l.Backend, a, b, d)
}
func (l limited) GroupedMaskedNT(ctx context.Context, a, b *tensor.FP8Matrix, d *gemm.Out, mm []int32, e int) error {
	*l.calls++
	return gemm.GroupedMaskedNT(ctx, l.Backend, a, b, d, mm, e)
}

// TestFrontFunctions: the front functions validate once, check Caps and
// refuse a nil backend before any backend code runs.
func TestFrontFunctions(t *testing.T) {
	ctx := context.Background()
	r := testutil.RNG(7)
	a, _ := tensor.QuantizePerToken(testutil.Normal(r, 4*200, 0, 1), 4, 200, tensor.QuantOptions{})
	au, _ := tensor.QuantizePerToken(testutil.Normal(r, 4*200, 0, 1), 4, 200, tensor.QuantOptions{UE8M0: true})
	b, _ := tensor.QuantizePerBlock(testutil.Normal(r, 3*200, 0, 1), 3, 200, tensor.QuantOptions{})
	out := func() *gemm.Out { return &gemm.Out{Rows: 4, Cols: 3, F32: tensor.HostOf(make([]float32, 12))} }
	calls := 0
	full := (&ref.Backend{}).Caps()
	be := func(mod func(*gemm.Caps)) gemm.Backend {
		c := full
		mod(&c)
		return limited{ref.New(), c, &calls}
	}
	cases := []struct {
		name string
		err  error
		call func() error
	}{
		{"nil backend", gemm.ErrUnsupported, func() error { return gemm.FP8GemmNT(ctx, nil, a, b, out()) }},
		{"nil backend BF16", gemm.ErrUnsupported, func() error { return gemm.BF16GemmNT(ctx, nil, nil, nil, nil) }},
		{"bad shape", gemm.ErrShape, func() error {
			return gemm.FP8GemmNT(ctx, be(func(*gemm.Caps) {}), a, b, &gemm.Out{Rows: 4, Cols: 2, F32: tensor.HostOf(make([]float32, 8))})
		}},
		{"no UE8M0", gemm.ErrUnsupported, func() error {
			return gemm.FP8GemmNT(ctx, be(func(c *gemm.Caps) { c.ScalesUE8M0 = false }), au, b, out())
		}},
		{"no F32 out", gemm.ErrUnsupported, func() error { return gemm.FP8GemmNT(ctx, be(func(c *gemm.Caps) { c.OutF32 = false }), a, b, out()) }},
		{"K align", gemm.ErrUnsupported, func() error { return gemm.FP8GemmNT(ctx, be(func(c *gemm.Caps) { c.KAlign = 16 }), a, b, out()) }},
		{"no masked", gemm.ErrUnsupported, func() error {
			ga, _ := tensor.Stack(a)
			gb, _ := tensor.Stack(b)
			return gemm.GroupedMaskedNT(ctx, be(func(c *gemm.Caps) { c.Masked = false }), ga, gb, out(), []int32{4}, 4)
		}},
	}
	for _, c := range cases {
		if err := c.call(); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
	if calls != 0 {
		t.Fatalf("%d calls reached the backend with arguments the front refused", calls)
	}
	d := out()
	if err := gemm.FP8GemmNT(ctx, be(func(*gemm.Caps) {}), a, b, d); err != nil || calls != 1 {
		t.Fatalf("valid call: %v, %d backend calls", err, calls)
	}
	// N = 0 returns before the backend.
	if err := gemm.FP8GemmNT(ctx, be(func(*gemm.Caps) {}), a, &tensor.FP8Matrix{K: 200, ScaleRows: 128}, &gemm.Out{Rows: 4, F32: tensor.Host[float32]{}}); err != nil || calls != 1 {
		t.Fatalf("N=0: %v, %d backend calls", err, calls)
	}
}

// TestRegistry: backends are constructed by name and listed with their
// status; an unknown name names the known ones.
func TestRegistry(t *testing.T) {
	for _, n := range []string{"ref", "cpu"} {
		b, err := gemm.NewBackend(n, gemm.Options{Workers: 2})
		if err != nil || b.Name() != n {
			t.Fatalf("NewBackend(%q) = %v, %v", n, b, err)
		}
	}
	if _, err := gemm.NewBackend("cuda-missing", gemm.Options{}); !errors.Is(err, gemm.ErrUnknownBackend) {
		t.Fatalf("unknown backend: %v", err)
	}
	l := gemm.Backends()
	if len(l) != 2 || l[0].Name != "cpu" || l[1].Name != "ref" || l[0].Err != nil || l[1].Doc == "" {
		t.Fatalf("Backends() = %+v", l)
	}
}
