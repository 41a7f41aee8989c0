package gemm_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/gemm/cpu"
	"github.com/fireflyer-go/fireflyer/gemm/ref"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

type dev[T any] = testutil.DeviceBuffer[T]

// upload copies a host operand's data and scales to fake device memory.
func upload(t *testing.T, m *tensor.FP8Matrix) *tensor.FP8Matrix {
	t.Helper()
	h, err := m.Host()
	if err != nil {
		t.Fatal(err)
	}
	c := *m
	c.Data = testutil.Upload(h.Data)
	c.ScalesF32 = testutil.Upload(h.ScalesF32)
	return &c
}

// devBackend is a fake device backend: it computes D = A·Bᵀ (FP8, float32
// scales, float32 output) on operands that live in fake device memory,
// reading them in place with the device's own accessors, with the
// reference backend's arithmetic. It refuses host storage, as a real GPU
// backend would refuse memory it cannot address.
type devBackend struct{ calls int }

func (*devBackend) Name() string { return "fake-device" }
func (*devBackend) Caps() gemm.Caps {
	return gemm.Caps{ScalesF32: true, OutF32: true, KAlign: 1, NAlign: 1}
}
func (*devBackend) GroupedContiguousNT(context.Context, *tensor.FP8Matrix, *tensor.FP8Matrix, *gemm.Out, []int32) error {
	return gemm.ErrUnsupported
}
func (*devBackend) GroupedMaskedNT(context.Context, *tensor.FP8Matrix, *tensor.FP8Matrix, *gemm.Out, []int32, int) error {
	return gemm.ErrUnsupported
}
func (*devBackend) BF16GemmNT(context.Context, *gemm.BF16Matrix, *gemm.BF16Matrix, *gemm.Out) error {
	return gemm.ErrUnsupported
}

func (be *devBackend) GemmNT(ctx context.Context, a, b *tensor.FP8Matrix, d *gemm.Out) error {
	ad, ok1 := a.Data.(*dev[tensor.E4M3])
	as, ok2 := a.ScalesF32.(*dev[float32])
	bd, ok3 := b.Data.(*dev[tensor.E4M3])
	bs, ok4 := b.ScalesF32.(*dev[float32])
	dd, ok5 := d.F32.(*dev[float32])
	if !(ok1 && ok2 && ok3 && ok4 && ok5) {
		return tensor.ErrNotHost // "not device memory": refused
	}
	be.calls++
	kbs, st := a.KBlocks(), a.RowStride()
	for m := 0; m < a.Rows; m++ {
		for n := 0; n < b.Rows; n++ {
			var acc float32
			for kb := 0; kb < kbs; kb++ {
				var part float32
				for k := kb * tensor.ScaleBlock; k < min((kb+1)*tensor.ScaleBlock, a.K); k++ {
					part = float32(part + float32(ad.At(m*st+k).Float32()*bd.At(n*b.RowStride()+k).Float32()))
				}
				s := float32(as.At(m*kbs+kb) * bs.At((n/b.ScaleRows)*kbs+kb))
				acc = float32(acc + float32(s*part))
			}
			dd.Set(m*d.RowStride()+n, acc)
		}
	}
	return nil
}

// TestDeviceStorage: operands whose storage is not host memory pass
// validation (it needs only lengths), the host backends refuse them with
// an error wrapping tensor.ErrNotHost and gemm.ErrUnsupported and touch
// nothing, and a device backend computes on them in place: no transfer
// between the upload and the download, and the same bits as ref on the
// host copies.
func TestDeviceStorage(t *testing.T) {
	const m, n, k = 5, 7, 300
	r := testutil.RNG(42)
	a, _ := tensor.QuantizePerToken(testutil.Normal(r, m*k, 0, 1), m, k, tensor.QuantOptions{})
	b, _ := tensor.QuantizePerBlock(testutil.Normal(r, n*k, 0, 1), n, k, tensor.QuantOptions{})
	want := make([]float32, m*n)
	if err := gemm.FP8GemmNT(context.Background(), ref.New(), a, b, &gemm.Out{Rows: m, Cols: n, F32: tensor.HostOf(want)}); err != nil {
		t.Fatal(err)
	}

	da, db := upload(t, a), upload(t, b)
	dd := testutil.NewDeviceBuffer[float32](m * n)
	if err := dd.CopyIn(0, []float32{float32(math.NaN())}); err != nil {
		t.Fatal(err)
	}
	out := &gemm.Out{Rows: m, Cols: n, F32: dd}
	bufs := []interface{ Transfers() int64 }{da.Data.(*dev[tensor.E4M3]), da.ScalesF32.(*dev[float32]),
		db.Data.(*dev[tensor.E4M3]), db.ScalesF32.(*dev[float32]), dd}
	transfers := func() (s int64) {
		for _, b := range bufs {
			s += b.Transfers()
		}
		return s
	}
	before := transfers()

	for _, host := range []gemm.Backend{ref.New(), cpu.New(cpu.Options{})} {
		err := gemm.FP8GemmNT(context.Background(), host, da, db, out)
		if !errors.Is(err, tensor.ErrNotHost) || !errors.Is(err, gemm.ErrUnsupported) {
			t.Fatalf("%s on device storage: %v, want ErrNotHost and ErrUnsupported", host.Name(), err)
		}
		if v := dd.At(0); v == v {
			t.Fatalf("%s wrote the device output", host.Name())
		}
	}
	// A host operand mixed with a device output is refused too.
	if err := gemm.FP8GemmNT(context.Background(), ref.New(), a, b, out); !errors.Is(err, tensor.ErrNotHost) {
		t.Fatalf("ref with a device output: %v", err)
	}
	// Validation still runs on device storage: a short buffer is ErrShape.
	short := &gemm.Out{Rows: m, Cols: n, F32: testutil.NewDeviceBuffer[float32](m*n - 1)}
	if err := gemm.FP8GemmNT(context.Background(), &devBackend{}, da, db, short); !errors.Is(err, gemm.ErrShape) {
		t.Fatalf("short device output: %v, want ErrShape", err)
	}

	be := &devBackend{}
	if err := gemm.FP8GemmNT(context.Background(), be, da, db, out); err != nil {
		t.Fatal(err)
	}
	if be.calls != 1 {
		t.Fatalf("device backend ran %d times", be.calls)
	}
	if got := transfers(); got != before {
		t.Fatalf("%d hidden transfers during the calls", got-before)
	}
	got := make([]float32, m*n)
	if err := dd.CopyOut(got, 0); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("D[%d] = %v on the device, %v on ref", i, got[i], want[i])
		}
	}
	// The device backend refuses host storage the same way.
	if err := gemm.FP8GemmNT(context.Background(), be, a, b, &gemm.Out{Rows: m, Cols: n, F32: tensor.HostOf(got)}); !errors.Is(err, tensor.ErrNotHost) {
		t.Fatalf("device backend on host storage: %v", err)
	}
}

// TestHostNil: the host resolvers refuse a nil operand or output with an
// error naming it and wrapping ErrShape (they used to panic for the BF16
// operands and the output).
func TestHostNil(t *testing.T) {
	bf := &gemm.BF16Matrix{Rows: 1, K: 1, Data: tensor.Host[tensor.BF16]{0}}
	f8 := &tensor.FP8Matrix{Rows: 1, K: 1, ScaleRows: 1, Data: tensor.Host[tensor.E4M3]{0}, ScalesF32: tensor.Host[float32]{1}}
	d := &gemm.Out{Rows: 1, Cols: 1, F32: tensor.Host[float32]{0}}
	errOf := func(_, _, _ any, err error) error { return err }
	var nilMN *gemm.BF16MNMatrix
	_, errMN := nilMN.Host()
	for _, c := range []struct {
		name, arg string
		err       error
	}{
		{"HostBF16 nil a", "a", errOf(gemm.HostBF16("ref", nil, bf, d))},
		{"HostBF16 nil b", "b", errOf(gemm.HostBF16("ref", bf, nil, d))},
		{"HostBF16 nil d", "d", errOf(gemm.HostBF16("ref", bf, bf, nil))},
		{"HostFP8 nil a", "a", errOf(gemm.HostFP8("ref", nil, f8, d))},
		{"HostFP8 nil d", "d", errOf(gemm.HostFP8("ref", f8, f8, nil))},
		{"BF16MNMatrix.Host nil", "m", errMN},
	} {
		if !errors.Is(c.err, gemm.ErrShape) || errors.Is(c.err, gemm.ErrUnsupported) ||
			!strings.HasPrefix(fmt.Sprint(c.err), "gemm: "+c.arg+": ") {
			t.Errorf("%s: %v, want ErrShape naming %s", c.name, c.err, c.arg)
		}
	}
	if err := errOf(gemm.HostBF16("ref", bf, bf, d)); err != nil {
		t.Errorf("HostBF16 on host operands: %v", err)
	}
}
