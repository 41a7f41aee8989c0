package safetensors

import (
	"context"
	"fmt"
	"os"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Reader is a safetensors file opened through an fs.Client with only its
// header read: tensors (or byte ranges of them) are read on demand by a
// read ring straight into the caller's registered fs Buffers, with no copy
// after the read and no read of tensors nobody asked for. A Reader is not
// safe for concurrent use.
type Reader struct {
	// Header is the parsed header.
	Header *Header

	c            *fs.Client
	f            *fs.File
	name         string
	chunk, depth int
	ring         *fs.Ring
	out          []fs.Completion
	closed       bool
}

// OpenReader opens name through c and reads its header (Options.Chunk and
// Depth tune the later reads; opts may be nil). Errors: ErrFormat or
// ErrTruncated for a malformed or short header, the fs error of the open;
// fs.ErrInvalid for a nil c.
func OpenReader(ctx context.Context, c *fs.Client, name string, opts *Options) (*Reader, error) {
	if err := checkClient(c); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := c.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return nil, err
	}
	h, err := readHeader(f, size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	chunk, depth := opts.chunkDepth()
	return &Reader{Header: h, c: c, f: f, name: name, chunk: chunk, depth: depth}, nil
}

// Names returns the tensor names in file order.
func (r *Reader) Names() []string {
	out := make([]string, len(r.Header.Tensors))
	for i, t := range r.Header.Tensors {
		out[i] = t.Name
	}
	return out
}

// Metadata returns the "__metadata__" map (nil when absent).
func (r *Reader) Metadata() map[string]string { return r.Header.Metadata }

// Info returns the header entry of the tensor called name. Errors:
// ErrNotFound naming it.
func (r *Reader) Info(name string) (TensorInfo, error) {
	ti, ok := r.Header.Lookup(name)
	if !ok {
		return TensorInfo{}, fmt.Errorf("%w: %q in %s", ErrNotFound, name, r.name)
	}
	return ti, nil
}

// ReadInto reads bytes [off, off+dst.Len()) of the tensor called name
// straight into dst, a Region of a Buffer of the Reader's Client (Depth
// reads of up to Chunk bytes in flight, short reads retried). Errors:
// ErrNotFound; fs.ErrRange when the range lies outside the tensor or dst
// belongs to another Client; ErrTruncated when the file ends early; the
// I/O's errno; ctx.Err() (also when ctx is already done before any I/O, on
// every backend); fs.ErrClosed after Close.
func (r *Reader) ReadInto(ctx context.Context, name string, off int64, dst fs.Region) error {
	if err := r.usable(ctx); err != nil {
		return err
	}
	ti, err := r.Info(name)
	if err != nil {
		return err
	}
	n := int64(dst.Len())
	if off < 0 || n == 0 || off > ti.End-ti.Begin-n {
		return fmt.Errorf("%w: bytes [%d,%d+%d) of %s, a tensor of %d bytes", fs.ErrRange, off, off, n, name, ti.End-ti.Begin)
	}
	if r.ring == nil {
		ring, err := r.c.NewRing(fs.RingOpts{Entries: r.depth, Op: fs.Read})
		if err != nil {
			return err
		}
		r.ring, r.out = ring, make([]fs.Completion, r.depth)
	}
	fileOff := r.Header.DataOffset + ti.Begin + off
	if err := readChunks(ctx, r.ring, r.f, dst.Buffer(), dst.Off(), fileOff, n, r.chunk, r.depth, r.out); err != nil {
		// The ring (with any I/O still in flight into the caller's
		// buffer) is closed; a later read makes a new one.
		r.ring.Close()
		r.ring = nil
		return fmt.Errorf("%s: %w", r.name, err)
	}
	return nil
}

// ReadTensor reads the tensor called name into a new Buffer of the
// Reader's Client and returns the tensor, whose Data aliases the Buffer,
// and the Buffer: the tensor stays valid until the Buffer (or the Client)
// is closed. Errors: those of ReadInto, and of fs.Client.NewBuffer.
func (r *Reader) ReadTensor(ctx context.Context, name string) (*tensor.Tensor, *fs.Buffer, error) {
	if err := r.usable(ctx); err != nil {
		return nil, nil, err
	}
	ti, err := r.Info(name)
	if err != nil {
		return nil, nil, err
	}
	size := int(ti.End - ti.Begin)
	t := &tensor.Tensor{DType: ti.DType, Shape: append([]int(nil), ti.Shape...), Strides: tensor.ContiguousStrides(ti.Shape)}
	buf, err := r.c.NewBuffer(max(size, 1), fs.BufferOpts{})
	if err != nil {
		return nil, nil, err
	}
	if size > 0 {
		reg, err := buf.Region(0, size)
		if err == nil {
			err = r.ReadInto(ctx, name, 0, reg)
		}
		if err != nil {
			buf.Close()
			return nil, nil, err
		}
	}
	t.Data = buf.Bytes()[:size:size]
	return t, buf, nil
}

// usable reports a closed Reader (fs.ErrClosed) or a done ctx before any
// I/O starts, whichever backend the Client runs.
func (r *Reader) usable(ctx context.Context) error {
	if r.closed {
		return fmt.Errorf("safetensors: %s: reader closed: %w", r.name, fs.ErrClosed)
	}
	return ctx.Err()
}

// Close closes the file and the Reader's ring. Buffers read into stay the
// caller's. Closing a closed Reader does nothing.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	var err error
	if r.ring != nil {
		err = r.ring.Close()
		r.ring = nil
	}
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	return err
}
