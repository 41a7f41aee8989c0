package p2p

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
	"github.com/fireflyer-go/fireflyer/pipeline"
	"github.com/fireflyer-go/fireflyer/tensor"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// group returns n p2p transports over one in-process ep group.
func group(t *testing.T, n int, opts Options) []*Transport {
	t.Helper()
	eps, err := inproc.New(n)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*Transport, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Go(func() { out[r], errs[r] = New(context.Background(), eps[r], opts) })
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	t.Cleanup(func() {
		for _, tr := range out {
			tr.Close()
		}
	})
	return out
}

func f32(shape []int, seed float32) *tensor.Tensor {
	n, _ := tensor.NumElements(shape)
	v := make([]float32, n)
	for i := range v {
		v[i] = seed + float32(i)*0.5
	}
	m, _ := tensor.FromSlice(v, shape...)
	return m
}

func sameTensor(t *testing.T, what string, got, want *tensor.Tensor) {
	t.Helper()
	if got.DType != want.DType || fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) || !bytes.Equal(got.Data, want.Data[:payloadLen(want)]) {
		t.Fatalf("%s: got %v %v (%d bytes), want %v %v (%d bytes)", what, got.DType, got.Shape, len(got.Data), want.DType, want.Shape, payloadLen(want))
	}
	if fmt.Sprint(got.Strides) != fmt.Sprint(tensor.ContiguousStrides(got.Shape)) {
		t.Fatalf("%s: strides %v", what, got.Strides)
	}
}

// Every rank sends every other rank tensors of several dtypes and shapes
// (a scalar, an empty one, one larger than the ring) before receiving any,
// then receives them in the reverse order of sending.
func TestAllPairsOutOfOrder(t *testing.T) {
	const n = 3
	trs := group(t, n, Options{Ring: 1024})
	msgs := func(from, to int) []*tensor.Tensor {
		i64, _ := tensor.FromSlice([]int64{int64(from), int64(to), -7}, 3)
		u8, _ := tensor.FromSlice([]uint8{}, 0, 5)
		return []*tensor.Tensor{
			f32([]int{3, 4}, float32(10*from+to)),
			f32(nil, 1.25),                    // scalar
			f32([]int{2, 700}, float32(from)), // 5600 bytes > ring
			i64, u8,
		}
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for r := range n {
		wg.Go(func() {
			errs[r] = func() error {
				for to := range n {
					if to == r {
						continue
					}
					for i, m := range msgs(r, to) {
						if err := trs[r].Send(ctx, to, pipeline.Tag{Phase: i, Kind: pipeline.Activation, Micro: r}, m); err != nil {
							return err
						}
					}
				}
				for from := range n {
					if from == r {
						continue
					}
					want := msgs(from, r)
					for i := len(want) - 1; i >= 0; i-- {
						got, err := trs[r].Recv(ctx, from, pipeline.Tag{Phase: i, Kind: pipeline.Activation, Micro: from})
						if err != nil {
							return err
						}
						if got.DType != want[i].DType || fmt.Sprint(got.Shape) != fmt.Sprint(want[i].Shape) || !bytes.Equal(got.Data, want[i].Data) {
							return fmt.Errorf("r%d from r%d message %d: got %v %v %v", r, from, i, got.DType, got.Shape, got.Data)
						}
					}
				}
				return nil
			}()
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	for r, tr := range trs {
		if p := tr.Pending(); p != 0 {
			t.Errorf("rank %d: %d messages pending", r, p)
		}
	}
}

// A tag sent again (the next step's message) queues behind the first.
func TestSameTagIsFIFO(t *testing.T) {
	trs := group(t, 2, Options{Ring: 256})
	ctx := context.Background()
	tag := pipeline.Tag{Phase: 1, Kind: pipeline.Gradient, Micro: 3}
	for i := range 4 {
		if err := trs[0].Send(ctx, 1, tag, f32([]int{5}, float32(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		got, err := trs[1].Recv(ctx, 0, tag)
		if err != nil {
			t.Fatal(err)
		}
		sameTensor(t, fmt.Sprint("step ", i), got, f32([]int{5}, float32(i)))
	}
}

// Sending to oneself copies: the caller may reuse its tensor.
func TestSendToSelf(t *testing.T) {
	trs := group(t, 1, Options{})
	m := f32([]int{2, 2}, 3)
	want := f32([]int{2, 2}, 3)
	tag := pipeline.Tag{Kind: pipeline.Activation}
	if err := trs[0].Send(context.Background(), 0, tag, m); err != nil {
		t.Fatal(err)
	}
	m.F32()[0] = 99
	got, err := trs[0].Recv(context.Background(), 0, tag)
	if err != nil {
		t.Fatal(err)
	}
	sameTensor(t, "self", got, want)
}

func TestRecvDeadline(t *testing.T) {
	trs := group(t, 2, Options{Timeout: 50 * time.Millisecond})
	start := time.Now()
	_, err := trs[1].Recv(context.Background(), 0, pipeline.Tag{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Fatalf("Recv returned after %v, want about 50ms", d)
	}
	// The context's earlier deadline wins over Options.Timeout.
	trs2 := group(t, 2, Options{Timeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := trs2[0].Recv(ctx, 1, pipeline.Tag{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
}

func TestRecvAfterClose(t *testing.T) {
	trs := group(t, 2, Options{})
	done := make(chan error, 1)
	go func() {
		_, err := trs[0].Recv(context.Background(), 1, pipeline.Tag{})
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	trs[0].Close()
	if err := <-done; !errors.Is(err, ep.ErrClosed) {
		t.Fatalf("got %v, want ep.ErrClosed", err)
	}
	if _, err := trs[0].Recv(context.Background(), 1, pipeline.Tag{}); !errors.Is(err, ep.ErrClosed) {
		t.Fatalf("after Close: got %v, want ep.ErrClosed", err)
	}
}

func TestBadInput(t *testing.T) {
	trs := group(t, 2, Options{})
	ctx := context.Background()
	tag := pipeline.Tag{}
	strided := f32([]int{2, 3}, 0)
	strided.Strides = []int{1, 2}
	short := f32([]int{4}, 0)
	short.Data = short.Data[:8]
	cases := map[string]*tensor.Tensor{
		"nil":            nil,
		"not contiguous": strided,
		"short data":     short,
		"invalid dtype":  {Shape: []int{1}, Data: make([]byte, 4)},
		"too many dims":  f32([]int{1, 1, 1, 1, 1, 1, 1, 1, 1}, 0),
	}
	for name, m := range cases {
		if err := trs[0].Send(ctx, 1, tag, m); !errors.Is(err, ErrParam) || !errors.Is(err, pipeline.ErrParam) {
			t.Errorf("%s: got %v, want ErrParam", name, err)
		}
	}
	if err := trs[0].Send(ctx, 2, tag, f32([]int{1}, 0)); !errors.Is(err, ErrParam) {
		t.Errorf("peer 2: got %v", err)
	}
	if _, err := trs[0].Recv(ctx, -1, tag); !errors.Is(err, ErrParam) {
		t.Errorf("peer -1: got %v", err)
	}
	if err := trs[0].Send(ctx, 1, pipeline.Tag{Micro: -1}, f32([]int{1}, 0)); !errors.Is(err, ErrParam) {
		t.Errorf("negative micro-batch: got %v", err)
	}
	eps, _ := inproc.New(1)
	defer eps[0].Close()
	for _, o := range []Options{{Ring: 100}, {Ring: 2 << 30}, {Timeout: -time.Second}} {
		if _, err := New(ctx, eps[0], o); !errors.Is(err, ErrParam) {
			t.Errorf("%+v: got %v, want ErrParam", o, err)
		}
	}
	big, _ := inproc.New(20000)
	if _, err := New(ctx, big[0], Options{Ring: 4 << 20}); !errors.Is(err, ErrParam) {
		t.Errorf("20000 ranks × 4 MiB: got %v, want ErrParam", err)
	}
	for _, b := range big {
		b.Close()
	}
	if _, err := New(ctx, nil, Options{}); !errors.Is(err, ErrParam) {
		t.Errorf("nil transport: got %v", err)
	}
}

// A peer that writes garbage into the ring breaks only its own stream,
// with ErrProtocol.
func TestGarbageStream(t *testing.T) {
	for name, corrupt := range map[string]func(h []byte){
		"magic": func(h []byte) { h[0] ^= 1 },
		"dims":  func(h []byte) { binary.LittleEndian.PutUint64(h[40:], 99) },
		"dtype": func(h []byte) { binary.LittleEndian.PutUint64(h[32:], 200) },
		"size":  func(h []byte) { binary.LittleEndian.PutUint64(h[48:], 12345) },
		"shape": func(h []byte) { binary.LittleEndian.PutUint64(h[fixedHdr:], 1<<62) },
	} {
		t.Run(name, func(t *testing.T) {
			eps, err := inproc.New(2)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			const ring = 1024
			hdr := 64
			var tr *Transport
			var wg sync.WaitGroup
			wg.Go(func() { tr, err = New(ctx, eps[0], Options{Ring: ring}) })
			if _, err := eps[1].Register(ctx, hdr+2*ring); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			defer eps[1].Close()
			defer tr.Close()
			h, _ := encodeHeader(pipeline.Tag{}, f32([]int{2}, 0))
			corrupt(h)
			h = append(h, make([]byte, 8)...)
			if err := eps[1].Put(ctx, 0, hdr+ring, h); err != nil {
				t.Fatal(err)
			}
			if err := eps[1].Signal(ctx, 0, 8, int64(len(h))); err != nil {
				t.Fatal(err)
			}
			if _, err := tr.Recv(ctx, 1, pipeline.Tag{}); !errors.Is(err, ErrProtocol) || !errors.Is(err, ep.ErrTransport) {
				t.Fatalf("got %v, want ErrProtocol", err)
			}
		})
	}
}

// Messages of sizes that put their start, and the ring's wrap point, at
// many different offsets: those that fit the ring are copied out of it in
// one pass (split at the wrap), the larger ones stream through it. Every
// received tensor keeps its bytes after the ring has been reused, so it
// does not alias the region.
func TestRingWrapPositions(t *testing.T) {
	trs := group(t, 2, Options{Ring: 512})
	ctx := context.Background()
	var sizes [][]int
	for n := 1; n <= 200; n += 7 {
		sizes = append(sizes, []int{n}) // 4…800 bytes: below, near and above the ring
	}
	var got []*tensor.Tensor
	errc := make(chan error, 1)
	go func() {
		for i, s := range sizes {
			if err := trs[0].Send(ctx, 1, pipeline.Tag{Kind: pipeline.Gradient, Micro: i}, f32(s, float32(i))); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range sizes {
		m, err := trs[1].Recv(ctx, 0, pipeline.Tag{Kind: pipeline.Gradient, Micro: i})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for i, s := range sizes {
		sameTensor(t, fmt.Sprintf("message %d of %v", i, s), got[i], f32(s, float32(i)))
		if cap(got[i].Data) != len(got[i].Data) {
			t.Fatalf("message %d: capacity %d beyond its %d bytes", i, cap(got[i].Data), len(got[i].Data))
		}
	}
}

// Recycle: a message of the recycled size lands in the recycled buffer,
// both one that fits the ring and one that streams through it, with the
// right bytes; other sizes, foreign buffers and nil are ignored.
func TestRecycle(t *testing.T) {
	trs := group(t, 2, Options{Ring: 1024})
	ctx := context.Background()
	for _, shape := range [][]int{{3, 10}, {2, 700}} { // 120 bytes, 5600 > ring
		send := func(i int) *tensor.Tensor {
			t.Helper()
			tag := pipeline.Tag{Kind: pipeline.Activation, Micro: i}
			errc := make(chan error, 1)
			go func() { errc <- trs[0].Send(ctx, 1, tag, f32(shape, float32(i))) }()
			m, err := trs[1].Recv(ctx, 0, tag)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			sameTensor(t, fmt.Sprintf("%v message %d", shape, i), m, f32(shape, float32(i)))
			return m
		}
		first := send(0)
		p := &first.Data[0]
		trs[1].Recycle(first)
		if first.Data != nil {
			t.Fatalf("%v: Recycle left the tensor's Data", shape)
		}
		trs[1].Recycle(nil)
		trs[1].Recycle(&tensor.Tensor{Data: make([]byte, len(f32(shape, 0).Data), 2*len(f32(shape, 0).Data))})
		if second := send(1); &second.Data[0] != p {
			t.Fatalf("%v: the message after Recycle did not reuse the buffer", shape)
		}
		if third := send(2); &third.Data[0] == p {
			t.Fatalf("%v: a buffer was reused twice", shape)
		}
	}
	if trs[1].poolBytes != 0 {
		t.Fatalf("pool holds %d bytes, want 0", trs[1].poolBytes)
	}
	big := &tensor.Tensor{Data: make([]byte, MaxRecycled+1)}
	trs[1].Recycle(big)
	if trs[1].poolBytes != 0 {
		t.Fatalf("Recycle kept %d bytes, more than MaxRecycled", trs[1].poolBytes)
	}
}
