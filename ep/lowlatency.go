package ep

import (
	"context"
	"encoding/binary"

	"github.com/fireflyer-go/fireflyer/internal/kernels"
	"github.com/fireflyer-go/fireflyer/internal/mmap"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// LowLatencyOptions are the optional arguments of LowLatencyDispatch.
type LowLatencyOptions struct {
	// UseFP8 quantizes the tokens to e4m3fn on the way, with one scale per
	// token and 128 channels: amax = max(|x|, 1e-4), scale = amax/448
	// (use_fp8).
	UseFP8 bool
	// RoundScale rounds each scale up to a power of two (round_scale).
	RoundScale bool
	// UseUE8M0 returns the scales as UE8M0 exponent bytes (use_ue8m0; needs
	// UseFP8 and RoundScale).
	UseUE8M0 bool
	// ReturnRecvHook splits the call (return_recv_hook): LowLatencyDispatch
	// only sends and returns; the result is filled when Hook is called.
	ReturnRecvHook bool
	// CumulativeLocalExpertRecvStats [E/R], when not nil, gets each local
	// expert's received count added (cumulative_local_expert_recv_stats).
	CumulativeLocalExpertRecvStats []int32
}

// LowLatencyResult is what a rank receives from LowLatencyDispatch, in the
// packed per-expert layout [E/R local experts][R·M rows][H]: for local
// expert e only the first Count[e] rows are valid, made of one block per
// source rank in ascending rank order (upstream's order is the
// nondeterministic arrival order), each block in the sender's (token, top-k
// slot) order. X, SrcInfo and the scales alias buffers of the Buffer that
// the low-latency dispatch two calls later overwrites (upstream's double
// buffering); Clone keeps them.
type LowLatencyResult struct {
	// X holds N = E/R·R·M rows of Hidden: BF16, or FP8 with Scales
	// ([E/R][R·M][ceil(H/128)] float32 multipliers) or, with UseUE8M0,
	// ScalesUE8M0 (same shape, exponent bytes). Upstream stores the scales
	// column-major; here they are row-major.
	X Tokens
	// Count [E/R]: valid rows per local expert (packed_recv_count).
	Count []int32
	// SrcInfo [E/R][R·M]: each row's token index at its source rank
	// (packed_recv_src_info).
	SrcInfo []int32
	// LayoutRange [E/R][R]: (begin<<32 | count) of the block from each
	// source rank (packed_recv_layout_range).
	LayoutRange []int64
	// Handle is the handle for LowLatencyCombine.
	Handle *LowLatencyHandle
	// Hook, with ReturnRecvHook, receives the data and fills this result;
	// call it once. Nil otherwise.
	Hook func(ctx context.Context) error
}

// Clone returns a copy of r that does not alias the Buffer.
func (r *LowLatencyResult) Clone() *LowLatencyResult {
	c := *r
	c.X = r.X.Clone()
	c.Count = clone(r.Count)
	c.SrcInfo = clone(r.SrcInfo)
	c.LayoutRange = clone(r.LayoutRange)
	c.Hook = nil
	return &c
}

// LowLatencyHandle is the handle of a low-latency dispatch (upstream's
// (src_info, layout_range, M, H, num_experts) tuple), plus the dispatched
// top-k ids so that LowLatencyCombine can check it gets the same.
type LowLatencyHandle struct {
	Rank, NumRanks, MaxTokensPerRank, Hidden, NumExperts int
	// SrcInfo [E/R][R·M] and LayoutRange [E/R][R]: as in LowLatencyResult.
	SrcInfo     []int32
	LayoutRange []int64
	// Count [E/R] valid rows per local expert.
	Count []int32

	slotK   []int32 // [E/R][R·M] top-k slot at the source
	topkIdx []int32 // this rank's dispatched [N][K]
	n, k    int
	buf     uint64
}

type llOutBuf struct {
	blk    *mmap.Block
	x      []byte
	scales []byte
	src    []int32
	slotK  []int32
}

// LowLatencySizeHint returns the bytes upstream's get_low_latency_rdma_size_hint
// gives for M tokens per rank, hidden H, R ranks and E experts:
// 2·max(M·d, E·M·c) + 2·E·M·max(d, c) + 2·align128(4E), with the dispatch
// message d = 16 + max(2H, H + 4·H/128) and the combine message
// c = 4·H/128 + 2H. The Go Buffer's own low-latency region
// (RegionBytes) is smaller, since puts read the caller's memory directly.
//
// Upstream: deep_ep.Buffer.get_low_latency_rdma_size_hint (config.hpp LowLatencyLayout).
func LowLatencySizeHint(m, hidden, ranks, experts int) int {
	d := 16 + max(2*hidden, hidden+4*hidden/128)
	c := 4*hidden/128 + 2*hidden
	a128 := func(n int) int { return (n + 127) &^ 127 }
	return 2*max(m*d, experts*m*c) + 2*experts*m*max(d, c) + 2*a128(4*experts)
}

// NormalSizeHint returns Options.NormalBytes large enough for any normal
// dispatch and combine in which no rank receives, or sends, more than
// maxRows rows (N·R at worst for N tokens per rank) of hidden channels and
// topk expert ids, in any encoding.
func NormalSizeHint(maxRows, hidden, topk int) int {
	a := dispatchAreas(maxRows, 2*hidden, 4*NumScales(hidden), topk, flagTopK|flagWeights).total
	c := align64(maxRows*2*hidden) + align64(maxRows*topk*4)
	return 2 * align64(max(a, c))
}

func (b *Buffer) llGeom() llGeometry { return newLLGeometry(b.opts.LowLatency, b.r) }

// LowLatencyDispatch sends each (token, top-k slot) of x (BF16, N ≤ M rows of
// the configured Hidden) to the rank hosting that expert, without per-rank
// deduplication, optionally quantizing to FP8 on the way, and receives the
// packed per-expert layout. It is a collective. Bad input on any rank (N > M,
// ids out of range, lengths) makes every rank return an error naming the
// argument. At most two low-latency dispatches may be outstanding (sent but
// not received); a third waits for the first's receive, up to the deadline.
//
// Upstream: deep_ep.Buffer.low_latency_dispatch (internode_ll.cu dispatch).
func (b *Buffer) LowLatencyDispatch(ctx context.Context, x Tokens, topk TopK, opts LowLatencyOptions) (*LowLatencyResult, error) {
	var res *LowLatencyResult
	hook, err := b.sendRecv(ctx, "low-latency dispatch", opts.ReturnRecvHook, func(ctx context.Context) (recv func(context.Context) error, err error) {
		res, recv, err = b.llDispatchSend(ctx, x, topk, opts)
		return recv, err
	})
	if err != nil {
		return nil, err
	}
	res.Hook = hook
	return res, nil
}

// sendRecv runs the send half of a low-latency collective as the stream's
// next operation; send returns the receive half. With hook set it returns
// the receive half as a Hook that may run once (a second call is ErrHandle,
// naming what), under the Buffer's deadline; otherwise it runs the receive
// now under the deadline and returns a nil Hook.
func (b *Buffer) sendRecv(ctx context.Context, what string, hook bool, send func(context.Context) (func(context.Context) error, error)) (func(context.Context) error, error) {
	var recv func(context.Context) error
	if err := b.runOp(ctx, func(ctx context.Context) (err error) {
		recv, err = send(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	if hook {
		once := false
		return func(hctx context.Context) error {
			if once {
				return errorf(ErrHandle, "%s hook called twice", what)
			}
			once = true
			if err := b.enter(); err != nil {
				return err
			}
			defer b.inflight.Done()
			hctx, cancel := b.ctxTimeout(hctx)
			defer cancel()
			return recv(hctx)
		}, nil
	}
	ctx, cancel := b.ctxTimeout(ctx)
	defer cancel()
	return nil, recv(ctx)
}

func (b *Buffer) validateLL(x *Tokens, topk *TopK, o *LowLatencyOptions) error {
	c := b.opts.LowLatency
	if c == nil {
		return errorf(ErrConfig, "low-latency mode needs Options.LowLatency")
	}
	if x.FP8 != nil {
		return errorf(ErrShape, "x must be BF16 for a low-latency dispatch")
	}
	if err := x.validate("x"); err != nil {
		return err
	}
	if x.Hidden != c.Hidden {
		return errorf(ErrShape, "x.Hidden = %d, want LowLatency.Hidden = %d", x.Hidden, c.Hidden)
	}
	if x.N > c.MaxTokensPerRank {
		return errorf(ErrRange, "x.N = %d exceeds LowLatency.MaxTokensPerRank = %d", x.N, c.MaxTokensPerRank)
	}
	if err := topk.validate("topk", x.N, c.NumExperts); err != nil {
		return err
	}
	if topk.K > c.MaxTopK {
		return errorf(ErrRange, "topk.K = %d exceeds LowLatency.MaxTopK = %d", topk.K, c.MaxTopK)
	}
	if o.UseUE8M0 && !(o.UseFP8 && o.RoundScale) {
		return errorf(ErrConfig, "opts.UseUE8M0 needs UseFP8 and RoundScale")
	}
	if o.RoundScale && !o.UseFP8 {
		return errorf(ErrConfig, "opts.RoundScale needs UseFP8")
	}
	if s := o.CumulativeLocalExpertRecvStats; s != nil && len(s) != c.NumExperts/b.r {
		return errorf(ErrShape, "len(opts.CumulativeLocalExpertRecvStats) = %d, want E/R = %d", len(s), c.NumExperts/b.r)
	}
	return nil
}

func (b *Buffer) llDispatchSend(ctx context.Context, x Tokens, topk TopK, o LowLatencyOptions) (*LowLatencyResult, func(context.Context) error, error) {
	verr := b.validateLL(&x, &topk, &o)
	if b.opts.LowLatency == nil {
		return nil, nil, verr
	}
	r, me := b.r, b.rank
	g := b.llGeom()
	n := b.lldSeq
	b.lldSeq++
	p := int(n % 2)
	half := b.lay.ll[p]
	for d := 0; d < r; d++ {
		if _, err := b.reg.Wait(ctx, b.counterOff(cLLDFree0+p, d), n/2); err != nil {
			return nil, nil, b.fail(err)
		}
	}
	h := statusHeader(opLLDispatch, verr)
	counts := make([][]int32, r)
	totals := make([]int, r)
	for d := range counts {
		counts[d] = make([]int32, g.el)
	}
	if verr == nil {
		h.hidden, h.experts, h.n, h.k = uint32(g.h), uint32(g.e), uint32(x.N), uint32(topk.K)
		if o.UseFP8 {
			h.flags |= flagFP8
		}
		if o.RoundScale {
			h.flags |= flagRoundScale
		}
		if o.UseUE8M0 {
			h.flags |= flagUE8M0
		}
		var q []tensor.E4M3
		var sc []float32
		if o.UseFP8 {
			q = make([]tensor.E4M3, x.N*g.h)
			sc = make([]float32, x.N*g.ns)
			for t := 0; t < x.N; t++ {
				tensor.QuantizeRowBF16(q[t*g.h:(t+1)*g.h], sc[t*g.ns:(t+1)*g.ns], x.BF16[t*g.h:(t+1)*g.h], o.RoundScale)
			}
		}
		k := topk.K
		metas := make([]int32, x.N*k*4)
		payloadLen := 2 * g.h
		if o.UseFP8 {
			payloadLen = g.h + 4*g.ns
		}
		pad := make([]byte, g.payload-payloadLen)
		for t := 0; t < x.N; t++ {
			for kk := 0; kk < k; kk++ {
				e := int(topk.Idx[t*k+kk])
				if e < 0 {
					continue
				}
				d, le := e/g.el, e%g.el
				j := totals[d]
				totals[d]++
				counts[d][le]++
				meta := metas[(t*k+kk)*4 : (t*k+kk+1)*4]
				meta[0], meta[1], meta[2] = int32(t), int32(kk), int32(le)
				off := half.dStaging + ((me*g.m*g.k)+j)*g.msg
				var err error
				if o.UseFP8 {
					err = b.t.Put(ctx, d, off, asBytes(q[t*g.h:(t+1)*g.h]), asBytes(sc[t*g.ns:(t+1)*g.ns]), pad, asBytes(meta))
				} else {
					err = b.t.Put(ctx, d, off, asBytes(x.BF16[t*g.h:(t+1)*g.h]), pad, asBytes(meta))
				}
				if err != nil {
					return nil, nil, b.fail(err)
				}
			}
		}
	}
	msg := make([]byte, hdrBytes+4*g.el)
	for i := 1; i <= r; i++ {
		d := (me + i) % r
		hd := h
		hd.numRecv = uint32(totals[d])
		hd.encode(msg)
		copy(msg[hdrBytes:], asBytes(counts[d]))
		if err := b.t.Put(ctx, d, half.dCounts+me*g.slot, msg); err != nil {
			return nil, nil, b.fail(err)
		}
		if err := b.t.Signal(ctx, d, b.counterOff(cLLD, me), 1); err != nil {
			return nil, nil, b.fail(err)
		}
	}
	res := &LowLatencyResult{}
	var topkCopy []int32
	if verr == nil {
		topkCopy = clone(topk.Idx)
	}
	recv := func(ctx context.Context) error {
		err := b.llDispatchRecv(ctx, n, verr, h, res, &o)
		if err == nil {
			res.Handle.topkIdx, res.Handle.n, res.Handle.k = topkCopy, x.N, topk.K
		}
		return err
	}
	if verr != nil {
		// Take part in the receive so that every rank stays in step, then
		// report this rank's own error.
		if err := recv(ctx); err != nil && errCode(err) == codeOther && b.broken() != nil {
			return nil, nil, err
		}
		return nil, nil, verr
	}
	return res, recv, nil
}

func (b *Buffer) llRelease(ctx context.Context, kind int) error {
	for s := 0; s < b.r; s++ {
		if err := b.t.Signal(ctx, s, b.counterOff(kind, b.rank), 1); err != nil {
			return b.fail(err)
		}
	}
	return nil
}

// llAgree waits until every rank has raised its counter of kind to n+1,
// decodes the ranks' headers (rank s's at base+s·stride of the region) and
// checks them, returning them: a rank's rejected input (verr on this rank) or disagreeing
// shapes release the free counter and return the error every rank reports.
func (b *Buffer) llAgree(ctx context.Context, kind int, n int64, verr error, base, stride, free int) ([]header, error) {
	for s := 0; s < b.r; s++ {
		if _, err := b.reg.Wait(ctx, b.counterOff(kind, s), n+1); err != nil {
			return nil, b.fail(err)
		}
	}
	mem := b.reg.Bytes()
	hs := make([]header, b.r)
	for s := range hs {
		hs[s] = decodeHeader(mem[base+s*stride:])
	}
	err := peerErr(b.rank, verr, hs)
	if err == nil {
		err = agreeLL(hs, b.rank)
	}
	if err != nil {
		if rerr := b.llRelease(ctx, free); rerr != nil {
			return nil, rerr
		}
		return nil, err
	}
	return hs, nil
}

func (b *Buffer) llDispatchRecv(ctx context.Context, n int64, verr error, mine header, res *LowLatencyResult, o *LowLatencyOptions) error {
	r, me := b.r, b.rank
	g := b.llGeom()
	p := int(n % 2)
	half := b.lay.ll[p]
	hs, err := b.llAgree(ctx, cLLD, n, verr, half.dCounts, g.slot, cLLDFree0+p)
	if err != nil {
		return err
	}
	mem := b.reg.Bytes()
	fp8 := mine.flags&flagFP8 != 0
	ue8m0 := mine.flags&flagUE8M0 != 0
	rm := r * g.m
	out := &b.llOut[p]
	if out.x == nil {
		nx, ns := align64(g.el*rm*2*g.h), align64(g.el*rm*g.ns*4)
		out.blk = mmap.Alloc(nx + ns)
		out.x = out.blk.Bytes[:nx]
		out.scales = out.blk.Bytes[nx : nx+ns]
		out.src = make([]int32, g.el*rm)
		out.slotK = make([]int32, g.el*rm)
	}
	count := make([]int32, g.el)
	ranges := make([]int64, g.el*r)
	begin := make([]int, g.el*r)
	for le := 0; le < g.el; le++ {
		acc := 0
		for s := 0; s < r; s++ {
			c := int(int32(binary.LittleEndian.Uint32(mem[half.dCounts+s*g.slot+hdrBytes+4*le:])))
			if c < 0 || acc+c > rm {
				return b.fail(errorf(ErrTransport, "rank %d sent a bad count %d for local expert %d", s, c, le))
			}
			begin[le*r+s] = acc
			ranges[le*r+s] = int64(acc)<<32 | int64(c)
			acc += c
		}
		count[le] = int32(acc)
	}
	rowLen := 2 * g.h
	if fp8 {
		rowLen = g.h
	}
	run := make([]int, g.el)
	for s := 0; s < r; s++ {
		clear(run)
		total := int(hs[s].numRecv)
		if total > g.m*g.k {
			return b.fail(errorf(ErrTransport, "rank %d sent %d messages, more than M·K = %d", s, total, g.m*g.k))
		}
		for j := 0; j < total; j++ {
			m := mem[half.dStaging+(s*g.m*g.k+j)*g.msg:]
			meta := view[int32](m[g.payload:], 4)
			t, kk, le := meta[0], meta[1], int(meta[2])
			if le < 0 || le >= g.el || t < 0 || int(t) >= g.m || kk < 0 || int(kk) >= g.k {
				return b.fail(errorf(ErrTransport, "rank %d sent a bad message header", s))
			}
			pos := begin[le*r+s] + run[le]
			run[le]++
			if run[le] > int(ranges[le*r+s]&0xFFFFFFFF) {
				return b.fail(errorf(ErrTransport, "rank %d sent more messages than counted for local expert %d", s, le))
			}
			row := le*rm + pos
			copy(out.x[row*rowLen:(row+1)*rowLen], m[:rowLen])
			if fp8 {
				sc := m[g.h : g.h+4*g.ns]
				if ue8m0 {
					for i := 0; i < g.ns; i++ {
						out.scales[row*g.ns+i] = byte(binary.LittleEndian.Uint32(sc[4*i:]) >> 23)
					}
				} else {
					copy(out.scales[row*g.ns*4:(row+1)*g.ns*4], sc)
				}
			}
			out.src[row] = t
			out.slotK[row] = kk
		}
	}
	if err := b.llRelease(ctx, cLLDFree0+p); err != nil {
		return err
	}
	nrows := g.el * rm
	res.X = Tokens{N: nrows, Hidden: g.h}
	switch {
	case !fp8:
		res.X.BF16 = view[tensor.BF16](out.x, nrows*g.h)
	case ue8m0:
		res.X.FP8 = view[tensor.E4M3](out.x, nrows*g.h)
		res.X.ScalesUE8M0 = view[tensor.UE8M0](out.scales, nrows*g.ns)
	default:
		res.X.FP8 = view[tensor.E4M3](out.x, nrows*g.h)
		res.X.Scales = view[float32](out.scales, nrows*g.ns)
	}
	res.Count = count
	res.SrcInfo = out.src
	res.LayoutRange = ranges
	res.Handle = &LowLatencyHandle{
		Rank: me, NumRanks: r, MaxTokensPerRank: g.m, Hidden: g.h, NumExperts: g.e,
		SrcInfo: clone(out.src), LayoutRange: ranges, Count: count,
		slotK: clone(out.slotK), buf: b.id,
	}
	if s := o.CumulativeLocalExpertRecvStats; s != nil {
		for le := range s {
			s[le] += count[le]
		}
	}
	return nil
}

func agreeLL(hs []header, me int) error {
	h0 := hs[me]
	for s, h := range hs {
		switch {
		case h.op != h0.op:
			return errorf(ErrShape, "ranks disagree on the operation: rank %d sent %d, rank %d %d", s, h.op, me, h0.op)
		case h.flags != h0.flags:
			return errorf(ErrShape, "ranks disagree on the FP8 options: rank %d passed flags %#x, rank %d %#x", s, h.flags, me, h0.flags)
		case h.hidden != h0.hidden:
			return errorf(ErrShape, "ranks disagree on hidden: rank %d passed %d, rank %d %d", s, h.hidden, me, h0.hidden)
		}
	}
	return nil
}

// LowLatencyCombineOptions are the optional arguments of LowLatencyCombine.
type LowLatencyCombineOptions struct {
	// ZeroCopy takes the expert outputs from NextCombineBuffer, which the
	// caller has filled, instead of x (zero_copy).
	ZeroCopy bool
	// ReturnRecvHook splits the call as in LowLatencyOptions.
	ReturnRecvHook bool
	// Out, when not nil, receives the [N][H] result (out=).
	Out []tensor.BF16
}

// LowLatencyCombineResult is the output of LowLatencyCombine.
type LowLatencyCombineResult struct {
	// X [N][H]: out[t] = Σ_k [idx≠−1]·w[t,k]·y(t,k), accumulated in float32
	// in top-k order and rounded to BF16.
	X []tensor.BF16
	// Hook, with ReturnRecvHook, receives and reduces; X is valid after it
	// returns nil.
	Hook func(ctx context.Context) error
}

// NextCombineBuffer returns the [E/R][R·M][H] BF16 buffer inside the region
// that the next LowLatencyCombine with ZeroCopy sends from
// (get_next_low_latency_combine_buffer). It is nil without low-latency mode.
func (b *Buffer) NextCombineBuffer() []tensor.BF16 {
	if b.opts.LowLatency == nil {
		return nil
	}
	b.mu.Lock()
	q := int(b.llcNext % 2)
	b.mu.Unlock()
	off := b.lay.llcSend[q]
	return view[tensor.BF16](b.reg.Bytes()[off:], b.lay.llcSendLen)
}

// LowLatencyCombine sends every row of x ([E/R][R·M][H] BF16, the expert
// outputs in the layout LowLatencyDispatch returned; only the first Count[e]
// rows of each expert are read) back to its source, where each token's rows
// are weighted by topk.Weights and summed. topk must be the TopK this rank
// passed to the dispatch that made h. It is a collective.
//
// Upstream: deep_ep.Buffer.low_latency_combine (internode_ll.cu combine).
func (b *Buffer) LowLatencyCombine(ctx context.Context, x []tensor.BF16, topk TopK, h *LowLatencyHandle, opts LowLatencyCombineOptions) (*LowLatencyCombineResult, error) {
	var res *LowLatencyCombineResult
	hook, err := b.sendRecv(ctx, "low-latency combine", opts.ReturnRecvHook, func(ctx context.Context) (recv func(context.Context) error, err error) {
		res, recv, err = b.llCombineSend(ctx, x, topk, h, opts)
		return recv, err
	})
	if err != nil {
		return nil, err
	}
	res.Hook = hook
	return res, nil
}

func (b *Buffer) validateLLCombine(x []tensor.BF16, topk *TopK, h *LowLatencyHandle, o *LowLatencyCombineOptions) error {
	c := b.opts.LowLatency
	if c == nil {
		return errorf(ErrConfig, "low-latency mode needs Options.LowLatency")
	}
	if h == nil || h.buf != b.id || h.Rank != b.rank {
		return errorf(ErrHandle, "handle is nil or was made by another Buffer or rank")
	}
	if !o.ZeroCopy && len(x) != b.lay.llcSendLen {
		return errorf(ErrShape, "len(x) = %d, want E/R×R×M×H = %d", len(x), b.lay.llcSendLen)
	}
	if topk.K != h.k || len(topk.Idx) != h.n*h.k {
		return errorf(ErrShape, "topk is %d×%d (len %d), want the dispatch's %d×%d", len(topk.Idx)/max(topk.K, 1), topk.K, len(topk.Idx), h.n, h.k)
	}
	for i, e := range topk.Idx {
		if e != h.topkIdx[i] {
			return errorf(ErrHandle, "topk.Idx[%d][%d] = %d differs from the dispatch's %d", i/h.k, i%h.k, e, h.topkIdx[i])
		}
	}
	if len(topk.Weights) != h.n*h.k {
		return errorf(ErrShape, "len(topk.Weights) = %d, want N×K = %d", len(topk.Weights), h.n*h.k)
	}
	if o.Out != nil && len(o.Out) != h.n*c.Hidden {
		return errorf(ErrShape, "len(opts.Out) = %d, want N×H = %d", len(o.Out), h.n*c.Hidden)
	}
	return nil
}

func (b *Buffer) llCombineSend(ctx context.Context, x []tensor.BF16, topk TopK, hd *LowLatencyHandle, o LowLatencyCombineOptions) (*LowLatencyCombineResult, func(context.Context) error, error) {
	verr := b.validateLLCombine(x, &topk, hd, &o)
	if b.opts.LowLatency == nil {
		return nil, nil, verr
	}
	r, me := b.r, b.rank
	g := b.llGeom()
	n := b.llcSeq
	b.llcSeq++
	q := int(n % 2)
	if o.ZeroCopy && verr == nil {
		x = view[tensor.BF16](b.reg.Bytes()[b.lay.llcSend[q]:], b.lay.llcSendLen)
	}
	b.mu.Lock()
	b.llcNext = b.llcSeq
	b.mu.Unlock()
	half := b.lay.ll[q]
	for s := 0; s < r; s++ {
		if _, err := b.reg.Wait(ctx, b.counterOff(cLLCFree0+q, s), n/2); err != nil {
			return nil, nil, b.fail(err)
		}
	}
	h := statusHeader(opLLCombine, verr)
	if verr == nil {
		h.hidden = uint32(g.h)
		rm := r * g.m
		xb := asBytes(x)
		for le := 0; le < g.el; le++ {
			for s := 0; s < r; s++ {
				rg := hd.LayoutRange[le*r+s]
				beg, cnt := int(rg>>32), int(rg&0xFFFFFFFF)
				for j := beg; j < beg+cnt; j++ {
					row := le*rm + j
					t, kk := int(hd.SrcInfo[row]), int(hd.slotK[row])
					off := half.cRecv + (t*g.k+kk)*2*g.h
					if err := b.t.Put(ctx, s, off, xb[row*2*g.h:(row+1)*2*g.h]); err != nil {
						return nil, nil, b.fail(err)
					}
				}
			}
		}
	}
	msg := make([]byte, hdrBytes)
	h.encode(msg)
	for i := 1; i <= r; i++ {
		s := (me + i) % r
		if err := b.t.Put(ctx, s, half.cStatus+me*hdrBytes, msg); err != nil {
			return nil, nil, b.fail(err)
		}
		if err := b.t.Signal(ctx, s, b.counterOff(cLLC, me), 1); err != nil {
			return nil, nil, b.fail(err)
		}
	}
	res := &LowLatencyCombineResult{}
	recv := func(ctx context.Context) error {
		return b.llCombineRecv(ctx, n, verr, h, topk, hd, o.Out, res)
	}
	if verr != nil {
		if err := recv(ctx); err != nil && b.broken() != nil {
			return nil, nil, err
		}
		return nil, nil, verr
	}
	return res, recv, nil
}

func (b *Buffer) llCombineRecv(ctx context.Context, n int64, verr error, mine header, topk TopK, hd *LowLatencyHandle, out []tensor.BF16, res *LowLatencyCombineResult) error {
	g := b.llGeom()
	q := int(n % 2)
	half := b.lay.ll[q]
	if _, err := b.llAgree(ctx, cLLC, n, verr, half.cStatus, hdrBytes, cLLCFree0+q); err != nil {
		return err
	}
	mem := b.reg.Bytes()
	N, K, H := hd.n, hd.k, g.h
	if out == nil {
		out = make([]tensor.BF16, N*H)
	}
	rows := view[tensor.BF16](mem[half.cRecv:], g.m*g.k*H)
	acc := make([]float32, H)
	ks := kernels.Best()
	for t := 0; t < N; t++ {
		clear(acc)
		for kk := 0; kk < K; kk++ {
			if topk.Idx[t*K+kk] < 0 {
				continue
			}
			slot := t*g.k + kk
			ks.AxpyBF16(acc, topk.Weights[t*K+kk], rows[slot*H:(slot+1)*H])
		}
		ks.ToBF16(out[t*H:(t+1)*H], acc)
	}
	if err := b.llRelease(ctx, cLLCFree0+q); err != nil {
		return err
	}
	res.X = out
	return nil
}
