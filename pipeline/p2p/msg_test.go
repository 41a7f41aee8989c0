package p2p

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/pipeline"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// The message path (ep/sock is an ep.Messenger): both ranks send every
// message before receiving any, then receive them in the reverse order;
// same tags queue in order; a recycled buffer is reused.
func TestMsgPathOutOfOrder(t *testing.T) {
	trs := sockPair(t, "unix", Options{})
	if trs[0].msg == nil {
		t.Fatal("ep/sock did not take the message path")
	}
	ctx := context.Background()
	msgs := []*tensor.Tensor{f32([]int{}, 3), f32([]int{0, 5}, 1), f32([]int{7}, 2), f32([]int{300, 1000}, 4)}
	bf := &tensor.Tensor{DType: tensor.BF16T, Shape: []int{2, 3}, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}}
	msgs = append(msgs, bf)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for r := range 2 {
		wg.Go(func() {
			for i, m := range msgs {
				if err := trs[r].Send(ctx, 1-r, pipeline.Tag{Kind: pipeline.Activation, Micro: i}, m); err != nil {
					errs[r] = err
					return
				}
			}
			// The same tag twice: first in, first out.
			for k := range 2 {
				if err := trs[r].Send(ctx, 1-r, pipeline.Tag{Kind: pipeline.Gradient}, f32([]int{4}, float32(10*k))); err != nil {
					errs[r] = err
					return
				}
			}
			for i := len(msgs) - 1; i >= 0; i-- {
				got, err := trs[r].Recv(ctx, 1-r, pipeline.Tag{Kind: pipeline.Activation, Micro: i})
				if err != nil {
					errs[r] = err
					return
				}
				if got.DType != msgs[i].DType || fmt.Sprint(got.Shape) != fmt.Sprint(msgs[i].Shape) || string(got.Data) != string(msgs[i].Data[:payloadLen(msgs[i])]) {
					errs[r] = fmt.Errorf("rank %d message %d: got %v %v", r, i, got.DType, got.Shape)
					return
				}
			}
			for k := range 2 {
				got, err := trs[r].Recv(ctx, 1-r, pipeline.Tag{Kind: pipeline.Gradient})
				if err != nil {
					errs[r] = err
					return
				}
				if string(got.Data) != string(f32([]int{4}, float32(10*k)).Data) {
					errs[r] = fmt.Errorf("rank %d: same-tag message %d out of order", r, k)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for r, tr := range trs {
		if n := tr.Pending(); n != 0 {
			t.Fatalf("rank %d: %d messages pending", r, n)
		}
	}

	// Recycle on the message path: the next message of that size lands in
	// the handed-back buffer.
	send := func(i int) *tensor.Tensor {
		t.Helper()
		tag := pipeline.Tag{Kind: pipeline.Activation, Micro: 100 + i}
		if err := trs[0].Send(ctx, 1, tag, f32([]int{64, 64}, float32(i))); err != nil {
			t.Fatal(err)
		}
		m, err := trs[1].Recv(ctx, 0, tag)
		if err != nil {
			t.Fatal(err)
		}
		sameTensor(t, "recycled message", m, f32([]int{64, 64}, float32(i)))
		return m
	}
	first := send(0)
	p := &first.Data[0]
	trs[1].Recycle(first)
	if second := send(1); &second.Data[0] != p {
		t.Fatal("the message after Recycle did not reuse the buffer")
	}
}

// A peer that closes makes a waiting Recv fail with ep.ErrClosed at once,
// not at its deadline; messages that arrived before stay receivable.
func TestMsgPathPeerClose(t *testing.T) {
	trs := sockPair(t, "tcp", Options{Timeout: time.Minute})
	ctx := context.Background()
	if err := trs[1].Send(ctx, 0, pipeline.Tag{Micro: 1}, f32([]int{8}, 1)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := trs[0].Recv(ctx, 1, pipeline.Tag{Micro: 2})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	trs[1].Close()
	select {
	case err := <-done:
		if !errors.Is(err, ep.ErrClosed) {
			t.Fatalf("got %v, want ep.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Recv still waiting 10 s after the peer closed")
	}
	got, err := trs[0].Recv(ctx, 1, pipeline.Tag{Micro: 1})
	if err != nil {
		t.Fatalf("message sent before the close: %v", err)
	}
	sameTensor(t, "message before close", got, f32([]int{8}, 1))
	if err := trs[0].Send(ctx, 1, pipeline.Tag{}, f32([]int{1}, 0)); err == nil {
		t.Fatal("Send to a closed peer succeeded")
	}
}

// A message whose header does not parse (sent below p2p, straight through
// the ep.Messenger) breaks the stream: Recv from that peer fails with
// ErrProtocol instead of waiting or returning garbage.
func TestMsgPathGarbageHeader(t *testing.T) {
	for name, meta := range map[string][]byte{
		"short":    []byte("abc"),
		"magic":    make([]byte, fixedHdr),
		"size":     mustHeader(t, pipeline.Tag{}, f32([]int{4}, 0), 99),
		"too-many": mustHeader(t, pipeline.Tag{}, f32([]int{4}, 0), -1),
	} {
		t.Run(name, func(t *testing.T) {
			trs := sockPair(t, "unix", Options{Timeout: time.Minute})
			payload := make([]byte, 16)
			if name == "size" {
				payload = make([]byte, 20)
			}
			if err := trs[0].msg.SendMsg(context.Background(), 1, meta, payload); err != nil {
				t.Fatal(err)
			}
			_, err := trs[1].Recv(context.Background(), 0, pipeline.Tag{})
			if !errors.Is(err, ep.ErrTransport) {
				t.Fatalf("got %v, want a protocol error (ep.ErrTransport)", err)
			}
		})
	}
}

// mustHeader encodes m's header; size ≥ 0 overwrites the payload size
// field, −1 claims one dimension more than the header holds.
func mustHeader(t *testing.T, tag pipeline.Tag, m *tensor.Tensor, size int) []byte {
	h, err := encodeHeader(tag, m)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case size >= 0:
		h[48] = byte(size)
	case size == -1:
		h[40]++
	}
	return h
}
