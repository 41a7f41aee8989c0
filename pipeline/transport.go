package pipeline

import (
	"context"
	"fmt"
	"sync"
)

// Transport carries one rank's point-to-point messages. Messages are matched
// by (sender, receiver, Tag), so the order in which ranks post them does not
// matter. Send must not wait for the receiver (it buffers); Recv blocks until
// the message arrives or ctx is done. A network transport implements the same
// two calls; upstream DualPipe uses NCCL batch_isend_irecv in dualpipe/comm.py.
type Transport[T any] interface {
	// Send posts msg for rank to under tag. It returns an error wrapping
	// ErrUnmatched if the same (sender, receiver, tag) was already sent.
	Send(ctx context.Context, to int, tag Tag, msg T) error
	// Recv returns the message rank from sent under tag.
	Recv(ctx context.Context, from int, tag Tag) (T, error)
}

// ChanNetwork is an in-process transport between ranks built on channels:
// one single-slot mailbox per (sender, receiver, tag). It is safe for
// concurrent use by all ranks. It carries one step: tags repeat from step to
// step and a tag is accepted only once, so use a new ChanNetwork per step
// (as Executor.RunLocal does).
type ChanNetwork[T any] struct {
	ranks int
	mu    sync.Mutex
	boxes map[msgKey]chan T
	sent  map[msgKey]bool
}

// NewChanNetwork returns an in-process network for ranks ranks.
func NewChanNetwork[T any](ranks int) *ChanNetwork[T] {
	return &ChanNetwork[T]{ranks: ranks, boxes: map[msgKey]chan T{}, sent: map[msgKey]bool{}}
}

// Endpoint returns rank's view of the network.
func (n *ChanNetwork[T]) Endpoint(rank int) Transport[T] { return chanEndpoint[T]{n, rank} }

// Pending returns the number of messages sent but not yet received.
func (n *ChanNetwork[T]) Pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, b := range n.boxes {
		c += len(b)
	}
	return c
}

func (n *ChanNetwork[T]) box(k msgKey, send bool) (chan T, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if k.from < 0 || k.from >= n.ranks || k.to < 0 || k.to >= n.ranks {
		return nil, fmt.Errorf("%w: message r%d→r%d outside %d ranks", ErrParam, k.from, k.to, n.ranks)
	}
	if send {
		if n.sent[k] {
			return nil, fmt.Errorf("%w: r%d→r%d %v sent twice", ErrUnmatched, k.from, k.to, k.tag)
		}
		n.sent[k] = true
	}
	b, ok := n.boxes[k]
	if !ok {
		b = make(chan T, 1)
		n.boxes[k] = b
	}
	return b, nil
}

func (n *ChanNetwork[T]) drop(k msgKey) {
	n.mu.Lock()
	delete(n.boxes, k)
	n.mu.Unlock()
}

type chanEndpoint[T any] struct {
	n    *ChanNetwork[T]
	rank int
}

// Send implements Transport.
func (e chanEndpoint[T]) Send(ctx context.Context, to int, tag Tag, msg T) error {
	b, err := e.n.box(msgKey{e.rank, to, tag}, true)
	if err != nil {
		return err
	}
	b <- msg // the slot is free: each key is sent once
	return nil
}

// Recv implements Transport.
func (e chanEndpoint[T]) Recv(ctx context.Context, from int, tag Tag) (T, error) {
	k := msgKey{from, e.rank, tag}
	b, err := e.n.box(k, false)
	if err != nil {
		var zero T
		return zero, err
	}
	select {
	case m := <-b:
		e.n.drop(k)
		return m, nil
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("pipeline: r%d waiting for %v from r%d: %w", e.rank, tag, from, ctx.Err())
	}
}
