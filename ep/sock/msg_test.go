package sock

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/fireflyer-go/fireflyer/ep"
)

// recorder is a MsgHandler that keeps every message it receives.
type recorder struct {
	mu   sync.Mutex
	got  []string // "from:meta:payload"
	ends []error
	ch   chan struct{}
}

func (r *recorder) MsgBuffer(from int, meta []byte, n int) ([]byte, error) {
	if string(meta) == "refuse" {
		return nil, errors.New("refused")
	}
	return make([]byte, n), nil
}

func (r *recorder) Msg(from int, meta, buf []byte) {
	r.mu.Lock()
	r.got = append(r.got, string(rune('0'+from))+":"+string(meta)+":"+string(buf))
	r.mu.Unlock()
	r.ch <- struct{}{}
}

func (r *recorder) MsgEnd(from int, err error) {
	r.mu.Lock()
	r.ends = append(r.ends, err)
	r.mu.Unlock()
}

// SendMsg delivers meta and a gathered payload, in order, to the handler
// the receiver installed, including to this rank itself; bad calls fail
// with the documented errors.
func TestSendMsg(t *testing.T) {
	trs := dialGroup(t, "unix", 2)
	ctx := context.Background()
	recs := []*recorder{{ch: make(chan struct{}, 8)}, {ch: make(chan struct{}, 8)}}
	if err := trs[0].SendMsg(ctx, 0, []byte("m"), []byte("x")); !errors.Is(err, ep.ErrConfig) {
		t.Fatalf("SendMsg before OnMsg: got %v, want ep.ErrConfig", err)
	}
	for r, tr := range trs {
		if err := tr.OnMsg(nil); !errors.Is(err, ep.ErrConfig) {
			t.Fatalf("OnMsg(nil): got %v, want ep.ErrConfig", err)
		}
		if err := tr.OnMsg(recs[r]); err != nil {
			t.Fatal(err)
		}
		if err := tr.OnMsg(recs[r]); !errors.Is(err, ep.ErrConfig) {
			t.Fatalf("OnMsg twice: got %v, want ep.ErrConfig", err)
		}
	}
	if err := trs[0].SendMsg(ctx, 1, []byte("h1"), []byte("ab"), []byte("cd")); err != nil {
		t.Fatal(err)
	}
	if err := trs[0].SendMsg(ctx, 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := trs[0].SendMsg(ctx, 0, []byte("self"), []byte("z")); err != nil {
		t.Fatal(err)
	}
	<-recs[1].ch
	<-recs[1].ch
	<-recs[0].ch
	if got := recs[1].got; len(got) != 2 || got[0] != "0:h1:abcd" || got[1] != "0::" {
		t.Fatalf("rank 1 received %q", got)
	}
	if got := recs[0].got; len(got) != 1 || got[0] != "0:self:z" {
		t.Fatalf("rank 0 received %q", got)
	}
	if err := trs[0].SendMsg(ctx, 2, nil); !errors.Is(err, ep.ErrRange) {
		t.Fatalf("SendMsg to rank 2 of 2: got %v, want ep.ErrRange", err)
	}
	if err := trs[0].SendMsg(ctx, 1, make([]byte, ep.MaxMsgMeta+1)); !errors.Is(err, ep.ErrRange) {
		t.Fatalf("oversized meta: got %v, want ep.ErrRange", err)
	}
	// A message the receiver refuses breaks the connection: both sides fail.
	if err := trs[0].SendMsg(ctx, 1, []byte("refuse"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := trs[1].Barrier(ctx); !errors.Is(err, ErrProtocol) {
		t.Fatalf("barrier after a refused message: got %v, want ErrProtocol", err)
	}
	recs[1].mu.Lock()
	defer recs[1].mu.Unlock()
	if len(recs[1].ends) != 1 || !errors.Is(recs[1].ends[0], ErrProtocol) {
		t.Fatalf("MsgEnd calls %v, want one ErrProtocol", recs[1].ends)
	}
}

// dialGroup dials n ranks of one group in this process; Cleanup closes them.
func dialGroup(t *testing.T, network string, n int) []*Transport {
	t.Helper()
	addr, port := masterFor(t, network)
	trs := make([]*Transport, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Go(func() {
			trs[r], errs[r] = Dial(context.Background(), Options{Network: network, Rank: r, WorldSize: n, MasterAddr: addr, MasterPort: port})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, tr := range trs {
			wg.Go(func() { tr.Close() })
		}
		wg.Wait()
	})
	return trs
}
