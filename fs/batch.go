package fs

import (
	"context"
	"fmt"
	"io"
)

// ioCtx is a pooled pair of rings (read and write) with a bounce buffer,
// used by File.ReadAt/WriteAt and Client.ReadBatch/WriteBatch.
type ioCtx struct {
	rd, wr *Ring
	buf    *Buffer
	out    []Completion
}

const (
	ioCtxEntries = 32
	ioCtxChunk   = 128 << 10
	ioCtxMaxIdle = 16
)

func (c *Client) getCtx(withBuf bool) (*ioCtx, error) {
	c.poolMu.Lock()
	for i := len(c.pool) - 1; i >= 0; i-- {
		x := c.pool[i]
		if !withBuf || x.buf != nil {
			c.pool = append(c.pool[:i], c.pool[i+1:]...)
			c.poolMu.Unlock()
			return x, nil
		}
	}
	c.poolMu.Unlock()
	x := &ioCtx{out: make([]Completion, ioCtxEntries)}
	var err error
	if x.rd, err = c.NewRing(RingOpts{Entries: ioCtxEntries, Op: Read}); err != nil {
		return nil, err
	}
	if x.wr, err = c.NewRing(RingOpts{Entries: ioCtxEntries, Op: Write}); err != nil {
		x.rd.Close()
		return nil, err
	}
	if withBuf {
		if x.buf, err = c.NewBuffer(ioCtxEntries*ioCtxChunk, BufferOpts{BlockSize: ioCtxChunk}); err != nil {
			x.rd.Close()
			x.wr.Close()
			return nil, err
		}
	}
	return x, nil
}

func (c *Client) putCtx(x *ioCtx) {
	c.poolMu.Lock()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if !closed && len(c.pool) < ioCtxMaxIdle {
		c.pool = append(c.pool, x)
		c.poolMu.Unlock()
		return
	}
	c.poolMu.Unlock()
	x.rd.Close()
	x.wr.Close()
	if x.buf != nil {
		x.buf.Close()
	}
}

// ReadBatch reads every request through a pooled read ring, at most 32 in
// flight, and returns one Completion per request in request order. The
// error is non-nil only when a request could not be queued (it names the
// request index) or ctx ended; per-I/O errors are in the Completions.
func (c *Client) ReadBatch(ctx context.Context, reqs []Req) ([]Completion, error) {
	return c.batch(ctx, Read, reqs)
}

// WriteBatch is ReadBatch for writes.
func (c *Client) WriteBatch(ctx context.Context, reqs []Req) ([]Completion, error) {
	return c.batch(ctx, Write, reqs)
}

func (c *Client) batch(ctx context.Context, op Op, reqs []Req) ([]Completion, error) {
	x, err := c.getCtx(false)
	if err != nil {
		return nil, err
	}
	defer c.putCtx(x)
	r := x.rd
	if op == Write {
		r = x.wr
	}
	res := make([]Completion, len(reqs))
	next, pending := 0, 0
	for next < len(reqs) || pending > 0 {
		for next < len(reqs) && pending < r.Entries() {
			q := reqs[next]
			q.Tag = uint64(next)
			if _, err := r.Prep(q); err != nil {
				drain(r, x.out, pending)
				return nil, fmt.Errorf("fs: request %d: %w", next, err)
			}
			next++
			pending++
		}
		if err := r.Submit(); err != nil {
			drain(r, x.out, pending)
			return nil, err
		}
		n, err := r.Wait(ctx, x.out, 1)
		for _, cp := range x.out[:n] {
			i := cp.Tag
			cp.Tag = reqs[i].Tag
			res[i] = cp
		}
		pending -= n
		if err != nil {
			drain(r, x.out, pending)
			return nil, err
		}
	}
	return res, nil
}

// drain waits for n outstanding completions and discards them, so a pooled
// ring is returned empty.
func drain(r *Ring, out []Completion, n int) {
	for n > 0 {
		k, err := r.Wait(context.Background(), out, 1)
		n -= k
		if err != nil {
			return
		}
	}
}

// ReadAt implements io.ReaderAt through a pooled ring and bounce buffer
// (the caller's slice is ordinary Go memory, not a registered Buffer; use a
// Ring with a Buffer for zero-copy). Short reads that are not at EOF are
// retried; at EOF it returns io.EOF with the bytes read.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: offset %d < 0", ErrRange, off)
	}
	x, err := f.c.getCtx(true)
	if err != nil {
		return 0, err
	}
	defer f.c.putCtx(x)
	total := 0
	for total < len(p) {
		// Queue up to Entries chunks, then collect them all.
		type span struct{ at, n int }
		var spans [ioCtxEntries]span
		k := 0
		for k < ioCtxEntries && total+k*ioCtxChunk < len(p) {
			at := total + k*ioCtxChunk
			n := min(ioCtxChunk, len(p)-at)
			reg, _ := x.buf.Region(k*ioCtxChunk, n)
			if _, err := x.rd.Prep(Req{File: f, Off: off + int64(at), Buf: reg, Tag: uint64(k)}); err != nil {
				drain(x.rd, x.out, k)
				return total, err
			}
			spans[k] = span{at, n}
			k++
		}
		if err := x.rd.Submit(); err != nil {
			drain(x.rd, x.out, k)
			return total, err
		}
		got := make([]int64, k)
		var firstErr error
		for seen := 0; seen < k; {
			n, err := x.rd.Wait(context.Background(), x.out, 1)
			for _, cp := range x.out[:n] {
				if cp.Err != nil && firstErr == nil {
					firstErr = cp.Err
				}
				got[cp.Tag] = cp.N
				copy(p[spans[cp.Tag].at:], x.buf.mem[int(cp.Tag)*ioCtxChunk:int(cp.Tag)*ioCtxChunk+int(cp.N)])
			}
			seen += n
			if err != nil {
				return total, err
			}
		}
		// Advance over the contiguous prefix that was read in full.
		for i := 0; i < k; i++ {
			total += int(got[i])
			if int(got[i]) < spans[i].n {
				if firstErr != nil {
					return total, firstErr
				}
				if got[i] == 0 {
					return total, io.EOF
				}
				break // short read: retry from here
			}
		}
	}
	return total, nil
}

// WriteAt implements io.WriterAt through a pooled ring and bounce buffer.
// Short writes are retried; an I/O error is returned with the bytes written
// before it.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: offset %d < 0", ErrRange, off)
	}
	x, err := f.c.getCtx(true)
	if err != nil {
		return 0, err
	}
	defer f.c.putCtx(x)
	total := 0
	for total < len(p) {
		k := 0
		var lens [ioCtxEntries]int
		for k < ioCtxEntries && total+k*ioCtxChunk < len(p) {
			at := total + k*ioCtxChunk
			n := min(ioCtxChunk, len(p)-at)
			copy(x.buf.mem[k*ioCtxChunk:], p[at:at+n])
			reg, _ := x.buf.Region(k*ioCtxChunk, n)
			if _, err := x.wr.Prep(Req{File: f, Off: off + int64(at), Buf: reg, Tag: uint64(k)}); err != nil {
				drain(x.wr, x.out, k)
				return total, err
			}
			lens[k] = n
			k++
		}
		if err := x.wr.Submit(); err != nil {
			drain(x.wr, x.out, k)
			return total, err
		}
		got := make([]int64, k)
		var errs = make([]error, k)
		for seen := 0; seen < k; {
			n, err := x.wr.Wait(context.Background(), x.out, 1)
			for _, cp := range x.out[:n] {
				got[cp.Tag], errs[cp.Tag] = cp.N, cp.Err
			}
			seen += n
			if err != nil {
				return total, err
			}
		}
		for i := 0; i < k; i++ {
			if errs[i] != nil {
				return total, errs[i]
			}
			total += int(got[i])
			if int(got[i]) < lens[i] {
				if got[i] == 0 {
					return total, io.ErrShortWrite
				}
				break
			}
		}
	}
	return total, nil
}
