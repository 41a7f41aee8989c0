package ep

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/fireflyer-go/fireflyer/internal/kernels"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// view returns the n elements of type T that start at b[0].
func view[T any](b []byte, n int) []T {
	if n == 0 {
		return []T{}
	}
	var z T
	_ = b[n*int(unsafe.Sizeof(z))-1]
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n)
}

func asBytes[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return tensor.Bytes(s)
}

// notify is the first phase of every normal-mode call (upstream's
// notify_dispatch): each rank puts its header and counts into every rank's
// notify slot and signals; then it waits for every rank's. It doubles as the
// entry barrier that makes the data areas safe to overwrite.
func (b *Buffer) notify(ctx context.Context, h header, counts []int32) ([]header, [][]byte, error) {
	seq := b.notifySeq + 1
	par := int(seq % 2)
	msg := make([]byte, hdrBytes+4*len(counts))
	h.encode(msg)
	copy(msg[hdrBytes:], asBytes(counts))
	slot := b.lay.notifySlot
	for i := 1; i <= b.r; i++ {
		d := (b.rank + i) % b.r
		if err := b.t.Put(ctx, d, b.lay.notify+(par*b.r+b.rank)*slot, msg); err != nil {
			return nil, nil, b.fail(err)
		}
		if err := b.t.Signal(ctx, d, b.counterOff(cNotify, b.rank), 1); err != nil {
			return nil, nil, b.fail(err)
		}
	}
	for s := 0; s < b.r; s++ {
		if _, err := b.reg.Wait(ctx, b.counterOff(cNotify, s), seq); err != nil {
			return nil, nil, b.fail(err)
		}
	}
	b.notifySeq = seq
	hs := make([]header, b.r)
	slots := make([][]byte, b.r)
	mem := b.reg.Bytes()
	for s := range slots {
		off := b.lay.notify + (par*b.r+s)*slot
		slots[s] = mem[off : off+slot]
		hs[s] = decodeHeader(slots[s])
	}
	return hs, slots, nil
}

// waitData waits for every rank's data-phase signal.
func (b *Buffer) waitData(ctx context.Context) error {
	seq := b.dataSeq + 1
	for s := 0; s < b.r; s++ {
		if _, err := b.reg.Wait(ctx, b.counterOff(cData, s), seq); err != nil {
			return b.fail(err)
		}
	}
	b.dataSeq = seq
	return nil
}

// agree checks that every rank's header matches this rank's on the fields
// that must agree; it returns the same verdict on every rank.
func agree(hs []header, me int, handle bool) error {
	h0 := hs[me]
	for s, h := range hs {
		var field string
		var a, c uint64
		switch {
		case h.op != h0.op:
			field, a, c = "operation", uint64(h.op), uint64(h0.op)
		case h.kind != h0.kind:
			field, a, c = "x encoding (BF16, FP8+float32 scales, FP8+UE8M0 scales)", uint64(h.kind), uint64(h0.kind)
		case h.hidden != h0.hidden:
			field, a, c = "hidden", uint64(h.hidden), uint64(h0.hidden)
		case h.k != h0.k:
			field, a, c = "top-k K", uint64(h.k), uint64(h0.k)
		case h.experts != h0.experts:
			field, a, c = "numExperts", uint64(h.experts), uint64(h0.experts)
		case h.flags != h0.flags:
			field, a, c = "flags (top-k, weights, FP8 options)", uint64(h.flags), uint64(h0.flags)
		case handle && h.handle != h0.handle:
			field, a, c = "handle (from different dispatches)", h.handle, h0.handle
		default:
			continue
		}
		return errorf(ErrShape, "ranks disagree on %s: rank %d passed %d, rank %d passed %d", field, s, a, me, c)
	}
	return nil
}

type dispAreas struct{ s, idx, w, src, total int }

func dispatchAreas(rows, rb, sb, k int, flags uint32) dispAreas {
	var a dispAreas
	off := align64(rows * rb)
	a.s = off
	off += align64(rows * sb)
	a.idx = off
	if flags&flagTopK != 0 {
		off += align64(rows * k * 4)
	}
	a.w = off
	if flags&flagWeights != 0 {
		off += align64(rows * k * 4)
	}
	a.src = off
	off += align64(rows * 4)
	a.total = off
	return a
}

// Dispatch sends each of this rank's tokens once to every rank that hosts
// one of its experts (per-rank deduplication) and returns what this rank
// receives. It is a collective; every rank must call it. topk may be nil
// when opts.Layout is given (a dispatch without expert ids). Bad input on any
// rank (lengths, expert ids out of range, ranks disagreeing on hidden, K,
// encoding or numExperts) makes every rank return an error that names the
// argument (a *PeerError on the other ranks), with no data moved.
//
// Upstream: deep_ep.Buffer.dispatch (intranode_dispatch, csrc/kernels/intranode.cu).
func (b *Buffer) Dispatch(ctx context.Context, x Tokens, topk *TopK, opts DispatchOptions) (*DispatchResult, error) {
	var res *DispatchResult
	err := b.runOp(ctx, func(ctx context.Context) (err error) {
		res, err = b.dispatchOp(ctx, x, topk, nil, opts)
		return err
	})
	return res, err
}

// DispatchAsync is Dispatch that returns at once; the call runs after the
// Buffer's earlier calls (upstream's async_finish with an EventOverlap).
func (b *Buffer) DispatchAsync(ctx context.Context, x Tokens, topk *TopK, opts DispatchOptions) *Pending[*DispatchResult] {
	return goOp(b, ctx, func(ctx context.Context) (*DispatchResult, error) {
		return b.dispatchOp(ctx, x, topk, nil, opts)
	})
}

// DispatchCached repeats the communication recorded in h for new token data
// x (same N and Hidden as the dispatch that made h), without exchanging
// counts or expert ids: upstream's cached dispatch, used for backward passes
// and repeated layers. The result's TopKIdx and Weights are nil.
//
// Upstream: deep_ep.Buffer.dispatch with handle=.
func (b *Buffer) DispatchCached(ctx context.Context, x Tokens, h *Handle) (*DispatchResult, error) {
	if h == nil {
		h = &Handle{} // fails checkHandle with ErrHandle on this rank, after telling the others
	}
	var res *DispatchResult
	err := b.runOp(ctx, func(ctx context.Context) (err error) {
		res, err = b.dispatchOp(ctx, x, nil, h, DispatchOptions{})
		return err
	})
	return res, err
}

func (b *Buffer) validateDispatch(x *Tokens, topk *TopK, h0 *Handle, o *DispatchOptions) (*Layout, error) {
	if b.opts.NormalBytes == 0 {
		return nil, errorf(ErrConfig, "normal mode needs Options.NormalBytes > 0")
	}
	if err := x.validate("x"); err != nil {
		return nil, err
	}
	if h0 != nil {
		return nil, b.checkHandle(h0, x.N, x.Hidden)
	}
	if o.NumExperts <= 0 || o.NumExperts%b.r != 0 {
		return nil, errorf(ErrConfig, "opts.NumExperts = %d, want a positive multiple of the rank count %d", o.NumExperts, b.r)
	}
	if o.NumExperts > b.opts.MaxExperts {
		return nil, errorf(ErrConfig, "opts.NumExperts = %d exceeds Options.MaxExperts = %d", o.NumExperts, b.opts.MaxExperts)
	}
	// Both travel to the other ranks as uint32 (and N×Hidden etc. must not
	// overflow): bound them by MaxInt32.
	if o.ExpertAlignment < 0 || o.ExpertAlignment > math.MaxInt32 {
		return nil, errorf(ErrRange, "opts.ExpertAlignment = %d outside [0, 2^31)", o.ExpertAlignment)
	}
	if o.NumWorstTokens < 0 || o.NumWorstTokens > math.MaxInt32 {
		return nil, errorf(ErrRange, "opts.NumWorstTokens = %d outside [0, 2^31)", o.NumWorstTokens)
	}
	if topk != nil {
		if err := topk.validate("topk", x.N, o.NumExperts); err != nil {
			return nil, err
		}
	}
	l := o.Layout
	switch {
	case l != nil:
		if l.NumTokens != x.N || l.NumRanks != b.r || l.NumExperts != o.NumExperts ||
			len(l.PerRank) != b.r || len(l.PerExpert) != o.NumExperts || len(l.InRank) != x.N*b.r {
			return nil, errorf(ErrShape, "opts.Layout is for %d tokens, %d ranks, %d experts; want %d, %d, %d",
				l.NumTokens, l.NumRanks, l.NumExperts, x.N, b.r, o.NumExperts)
		}
	case topk != nil:
		var err error
		if l, err = ComputeLayout(*topk, x.N, b.r, o.NumExperts); err != nil {
			return nil, err
		}
	default:
		return nil, errorf(ErrShape, "topk is nil and opts.Layout is nil: one is needed")
	}
	return l, nil
}

func (b *Buffer) checkHandle(h *Handle, n, hidden int) error {
	switch {
	case h == nil:
		return errorf(ErrHandle, "handle is nil")
	case h.buf != b.id || h.Rank != b.rank:
		return errorf(ErrHandle, "handle was made by another Buffer or rank")
	case n != h.NumTokens:
		return errorf(ErrShape, "x.N = %d, want the handle's %d tokens", n, h.NumTokens)
	case hidden != h.Hidden && hidden >= 0:
		return errorf(ErrShape, "hidden = %d, want the handle's %d", hidden, h.Hidden)
	}
	return nil
}

func (b *Buffer) dispatchOp(ctx context.Context, x Tokens, topk *TopK, h0 *Handle, o DispatchOptions) (*DispatchResult, error) {
	r, me := b.r, b.rank
	l, verr := b.validateDispatch(&x, topk, h0, &o)
	if verr != nil && b.opts.NormalBytes == 0 {
		return nil, verr // every rank fails the same way (options agree)
	}
	if o.ExpertAlignment == 0 {
		o.ExpertAlignment = 1
	}
	h := statusHeader(opDispatch, verr)
	var counts []int32
	if verr == nil {
		h.kind, h.hidden, h.n = x.kind(), uint32(x.Hidden), uint32(x.N)
		if h0 != nil {
			h.op, h.handle = opCached, h0.seq
		} else {
			h.experts, h.align, h.worst = uint32(o.NumExperts), uint32(o.ExpertAlignment), uint32(o.NumWorstTokens)
			if topk != nil {
				h.flags |= flagTopK
				h.k = uint32(topk.K)
				if topk.Weights != nil {
					h.flags |= flagWeights
				}
			}
			counts = append(append(make([]int32, 0, r+o.NumExperts), l.PerRank...), l.PerExpert...)
		}
	}
	hs, slots, err := b.notify(ctx, h, counts)
	if err != nil {
		return nil, err
	}
	if err := peerErr(me, verr, hs); err != nil {
		return nil, err
	}
	if err := agree(hs, me, h0 != nil); err != nil {
		return nil, err
	}

	// The count matrix cnt[s][d], the same on every rank.
	cnt := make([]int, r*r)
	for s := 0; s < r; s++ {
		for d := 0; d < r; d++ {
			if h0 != nil {
				cnt[s*r+d] = h0.count(s, d)
			} else {
				cnt[s*r+d] = int(int32(binary.LittleEndian.Uint32(slots[s][hdrBytes+4*d:])))
			}
		}
	}
	kind, hidden, k, flags := h.kind, int(h.hidden), int(h.k), h.flags
	rb, sb := rowBytes(kind, hidden), scaleBytes(kind, hidden)
	rows := make([]int, r) // rows of each rank's dispatch area
	recv := make([]int, r)
	for d := 0; d < r; d++ {
		for s := 0; s < r; s++ {
			recv[d] += cnt[s*r+d]
		}
		rows[d] = max(recv[d], int(hs[d].worst))
		if h0 == nil && hs[d].worst > 0 && int(hs[d].worst) < recv[d] {
			return nil, errorf(ErrRange, "rank %d: NumWorstTokens = %d is below the %d tokens it receives", d, hs[d].worst, recv[d])
		}
		if need := dispatchAreas(rows[d], rb, sb, k, flags).total; need > b.lay.half {
			return nil, errorf(ErrCapacity, "rank %d receives %d rows needing %d bytes; Options.NormalBytes/2 = %d (see NormalSizeHint)", d, rows[d], need, b.lay.half)
		}
	}

	// Destinations of this rank's tokens, in token order.
	inRank := l.inRank(h0)
	lists := make([][]int32, r)
	sendSlot := make([]int32, x.N*r)
	for t := 0; t < x.N; t++ {
		for d := 0; d < r; d++ {
			if inRank[t*r+d] {
				sendSlot[t*r+d] = int32(len(lists[d]))
				lists[d] = append(lists[d], int32(t))
			} else {
				sendSlot[t*r+d] = -1
			}
		}
	}
	for d := 0; d < r; d++ {
		if len(lists[d]) != cnt[me*r+d] {
			return nil, b.fail(fmt.Errorf("%w: handle and layout disagree on rank %d's count", ErrHandle, d))
		}
	}
	var xb, scb []byte
	if kind == kindBF16 {
		xb = asBytes(x.BF16)
	} else {
		xb = asBytes(x.FP8)
		if kind == kindFP8F32 {
			scb = asBytes(x.Scales)
		} else {
			scb = asBytes(x.ScalesUE8M0)
		}
	}
	var idxb, wb []byte
	if topk != nil {
		idxb = asBytes(topk.Idx)
		wb = asBytes(topk.Weights)
	}
	bufs := make([][]byte, 0, x.N)
	put := func(d, off int, list []int32, src []byte, size int) error {
		if size == 0 || len(list) == 0 {
			return nil
		}
		bufs = bufs[:0]
		for _, t := range list {
			bufs = append(bufs, src[int(t)*size:(int(t)+1)*size])
		}
		return b.t.Put(ctx, d, off, bufs...)
	}
	for i := 1; i <= r; i++ {
		d := (me + i) % r
		base := 0
		for s := 0; s < me; s++ {
			base += cnt[s*r+d]
		}
		a := dispatchAreas(rows[d], rb, sb, k, flags)
		area := b.lay.dispatch
		list := lists[d]
		err := put(d, area+base*rb, list, xb, rb)
		if err == nil {
			err = put(d, area+a.s+base*sb, list, scb, sb)
		}
		if err == nil && flags&flagTopK != 0 {
			err = put(d, area+a.idx+base*k*4, list, idxb, k*4)
		}
		if err == nil && flags&flagWeights != 0 {
			err = put(d, area+a.w+base*k*4, list, wb, k*4)
		}
		if err == nil && len(list) > 0 {
			err = b.t.Put(ctx, d, area+a.src+base*4, asBytes(list))
		}
		if err == nil {
			err = b.t.Signal(ctx, d, b.counterOff(cData, me), 1)
		}
		if err != nil {
			return nil, b.fail(err)
		}
	}
	if err := b.waitData(ctx); err != nil {
		return nil, err
	}

	// This rank's received rows, in its own region.
	nrow, nrecv := rows[me], recv[me]
	a := dispatchAreas(nrow, rb, sb, k, flags)
	mem := b.reg.Bytes()[b.lay.dispatch:]
	res := &DispatchResult{X: Tokens{N: nrow, Hidden: hidden}}
	switch kind {
	case kindBF16:
		res.X.BF16 = view[tensor.BF16](mem, nrow*hidden)
	case kindFP8F32:
		res.X.FP8 = view[tensor.E4M3](mem, nrow*hidden)
		res.X.Scales = view[float32](mem[a.s:], nrow*NumScales(hidden))
	case kindFP8UE8M0:
		res.X.FP8 = view[tensor.E4M3](mem, nrow*hidden)
		res.X.ScalesUE8M0 = view[tensor.UE8M0](mem[a.s:], nrow*NumScales(hidden))
	}
	src := view[int32](mem[a.src:], nrow)
	for i := nrecv; i < nrow; i++ {
		src[i] = -1
	}
	el := int(h.experts) / r
	if flags&flagTopK != 0 {
		idx := view[int32](mem[a.idx:], nrow*k)
		var w []float32
		if flags&flagWeights != 0 {
			w = view[float32](mem[a.w:], nrow*k)
		}
		lo, hi := int32(me*el), int32((me+1)*el)
		for i := range idx {
			e := idx[i]
			if i < nrecv*k && e >= lo && e < hi {
				idx[i] = e - lo
				continue
			}
			idx[i] = -1
			if w != nil {
				w[i] = 0
			}
		}
		res.TopKIdx, res.Weights = idx, w
	}
	if h0 != nil {
		res.Handle = h0
		if o.NumWorstTokens == 0 {
			res.PerExpert = clone(h0.PerExpert)
		}
		return res, nil
	}
	per := make([]int, el)
	for s := 0; s < r; s++ {
		for j := range per {
			per[j] += int(int32(binary.LittleEndian.Uint32(slots[s][hdrBytes+4*(r+me*el+j):])))
		}
	}
	for j := range per {
		per[j] = (per[j] + o.ExpertAlignment - 1) / o.ExpertAlignment * o.ExpertAlignment
	}
	if o.NumWorstTokens == 0 {
		res.PerExpert = per
	}
	b.dispatchSeq++
	hd := &Handle{
		Rank: me, NumRanks: r, NumTokens: x.N, NumRecv: nrecv, Hidden: hidden,
		RankPrefix: make([]int32, r*r),
		RecvSrcIdx: clone(src[:nrecv]),
		InRank:     clone(inRank),
		SendSlot:   sendSlot,
		PerExpert:  clone(per),
		buf:        b.id,
		seq:        uint64(b.dispatchSeq),
	}
	for d := 0; d < r; d++ {
		acc := 0
		for s := 0; s < r; s++ {
			acc += cnt[s*r+d]
			hd.RankPrefix[s*r+d] = int32(acc)
		}
	}
	res.Handle = hd
	return res, nil
}

func (l *Layout) inRank(h *Handle) []bool {
	if h != nil {
		return h.InRank
	}
	return l.InRank
}

// CombineOptions are the optional arguments of Combine.
type CombineOptions struct {
	// Weights [NumRecv][K], K = TopK: the received rows' weights to sum back
	// (upstream's topk_weights); nil skips them.
	Weights []float32
	TopK    int
	// Bias holds zero, one or two [N][H] BF16 tensors added to the sums.
	Bias [2][]tensor.BF16
	// Out, when not nil, receives the [N][H] result instead of a new slice.
	Out []tensor.BF16
}

// CombineResult is the output of Combine.
type CombineResult struct {
	// X [N][H]: per original token, the float32 sum over the ranks it was
	// sent to (ascending rank order) plus the biases, rounded to BF16.
	X []tensor.BF16
	// Weights [N][K]: the sum of the weight rows sent back; since dispatch
	// zeroed non-local slots it reconstructs the original weights exactly.
	// Nil when CombineOptions.Weights is nil.
	Weights []float32
}

// Combine is the reverse of the dispatch that made h: every rank sends each
// received row back to its source, and each source sums, per token and in
// float32, the rows from every rank the token went to (an unweighted sum:
// the caller has already reduced its local experts' outputs, multiplied by
// their weights, into one row per received token). x is [NumRecv][H] BF16
// (more rows are allowed, as with NumWorstTokens; only the first NumRecv
// are used). It is a collective; errors as for Dispatch.
//
// Upstream: deep_ep.Buffer.combine (intranode_combine).
func (b *Buffer) Combine(ctx context.Context, x []tensor.BF16, h *Handle, opts CombineOptions) (*CombineResult, error) {
	var res *CombineResult
	err := b.runOp(ctx, func(ctx context.Context) (err error) {
		res, err = b.combineOp(ctx, x, h, opts)
		return err
	})
	return res, err
}

// CombineAsync is Combine that returns at once (see DispatchAsync).
func (b *Buffer) CombineAsync(ctx context.Context, x []tensor.BF16, h *Handle, opts CombineOptions) *Pending[*CombineResult] {
	return goOp(b, ctx, func(ctx context.Context) (*CombineResult, error) {
		return b.combineOp(ctx, x, h, opts)
	})
}

func (b *Buffer) validateCombine(x []tensor.BF16, h *Handle, o *CombineOptions) error {
	if b.opts.NormalBytes == 0 {
		return errorf(ErrConfig, "normal mode needs Options.NormalBytes > 0")
	}
	if h == nil || h.buf != b.id || h.Rank != b.rank {
		return errorf(ErrHandle, "handle is nil or was made by another Buffer or rank")
	}
	H := h.Hidden
	if len(x)%H != 0 || len(x)/H < h.NumRecv {
		return errorf(ErrShape, "len(x) = %d, want NumRecv×Hidden = %d×%d (or more rows)", len(x), h.NumRecv, H)
	}
	if o.Weights != nil {
		if o.TopK <= 0 || len(o.Weights)%o.TopK != 0 || len(o.Weights)/o.TopK < h.NumRecv {
			return errorf(ErrShape, "len(opts.Weights) = %d with opts.TopK = %d, want NumRecv×TopK rows for %d rows", len(o.Weights), o.TopK, h.NumRecv)
		}
	}
	for i, bias := range o.Bias {
		if bias != nil && len(bias) != h.NumTokens*H {
			return errorf(ErrShape, "len(opts.Bias[%d]) = %d, want N×H = %d×%d", i, len(bias), h.NumTokens, H)
		}
	}
	if o.Out != nil && len(o.Out) != h.NumTokens*H {
		return errorf(ErrShape, "len(opts.Out) = %d, want N×H = %d×%d", len(o.Out), h.NumTokens, H)
	}
	return nil
}

func (b *Buffer) combineOp(ctx context.Context, x []tensor.BF16, h0 *Handle, o CombineOptions) (*CombineResult, error) {
	r, me := b.r, b.rank
	verr := b.validateCombine(x, h0, &o)
	if verr != nil && b.opts.NormalBytes == 0 {
		return nil, verr
	}
	h := statusHeader(opCombine, verr)
	if verr == nil {
		h.hidden, h.handle = uint32(h0.Hidden), h0.seq
		if o.Weights != nil {
			h.flags |= flagWeights
			h.k = uint32(o.TopK)
		}
	}
	hs, _, err := b.notify(ctx, h, nil)
	if err != nil {
		return nil, err
	}
	if err := peerErr(me, verr, hs); err != nil {
		return nil, err
	}
	if err := agree(hs, me, true); err != nil {
		return nil, err
	}
	H, k := h0.Hidden, o.TopK
	hasW := o.Weights != nil
	sends := make([]int, r) // rows each rank sent in the dispatch = rows it gets back
	for s := 0; s < r; s++ {
		for d := 0; d < r; d++ {
			sends[s] += h0.count(s, d)
		}
		need := align64(sends[s] * 2 * H)
		if hasW {
			need += align64(sends[s] * k * 4)
		}
		if need > b.lay.half {
			return nil, errorf(ErrCapacity, "rank %d gets %d combined rows needing %d bytes; Options.NormalBytes/2 = %d (see NormalSizeHint)", s, sends[s], need, b.lay.half)
		}
	}
	xb := asBytes(x)
	var wb []byte
	if hasW {
		wb = asBytes(o.Weights)
	}
	for i := 1; i <= r; i++ {
		s := (me + i) % r
		beg, end := h0.RecvRange(s)
		base := 0
		for d := 0; d < me; d++ {
			base += h0.count(s, d)
		}
		var err error
		if end > beg && s != me { // this rank's own rows are read in place
			err = b.t.Put(ctx, s, b.lay.combine+base*2*H, xb[beg*2*H:end*2*H])
			if err == nil && hasW {
				err = b.t.Put(ctx, s, b.lay.combine+align64(sends[s]*2*H)+base*k*4, wb[beg*k*4:end*k*4])
			}
		}
		if err == nil {
			err = b.t.Signal(ctx, s, b.counterOff(cData, me), 1)
		}
		if err != nil {
			return nil, b.fail(err)
		}
	}
	if err := b.waitData(ctx); err != nil {
		return nil, err
	}

	// Reduce: rows from every destination rank, in ascending rank order.
	n := h0.NumTokens
	mem := b.reg.Bytes()[b.lay.combine:]
	rowsX := view[tensor.BF16](mem, sends[me]*H)
	var rowsW []float32
	if hasW {
		rowsW = view[float32](mem[align64(sends[me]*2*H):], sends[me]*k)
	}
	base := make([]int, r)
	for d := 1; d < r; d++ {
		base[d] = base[d-1] + h0.count(me, d-1)
	}
	out := o.Out
	if out == nil {
		out = make([]tensor.BF16, n*H)
	}
	res := &CombineResult{X: out}
	if hasW {
		res.Weights = make([]float32, n*k)
	}
	selfBeg, _ := h0.RecvRange(me)
	rows := make([][]tensor.BF16, 0, r+2)
	ks := kernels.Best()
	for t := 0; t < n; t++ {
		rows = rows[:0]
		for d := 0; d < r; d++ {
			slot := h0.SendSlot[t*r+d]
			if slot < 0 {
				continue
			}
			row := base[d] + int(slot)
			src, ws := rowsX, rowsW
			if d == me {
				row = selfBeg + int(slot)
				src, ws = x, o.Weights
			}
			rows = append(rows, src[row*H:(row+1)*H])
			if hasW {
				ws, wd := ws[row*k:(row+1)*k], res.Weights[t*k:(t+1)*k]
				for j := range wd {
					wd[j] += ws[j]
				}
			}
		}
		for _, bias := range o.Bias {
			if bias != nil {
				rows = append(rows, bias[t*H:(t+1)*H])
			}
		}
		// float32 sum in ascending rank order, then the biases, then BF16.
		ks.SumBF16(out[t*H:(t+1)*H], rows)
	}
	return res, nil
}
