package safetensors

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/internal/mmap"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// Options tunes Write and Open. The zero value is ready to use.
type Options struct {
	// Metadata is written as "__metadata__" (Write only).
	Metadata map[string]string
	// Atomic makes Write produce name+".tmp", fsync it and rename it over
	// name, so a crash leaves either the old file or the new one (posix and
	// uring backends).
	Atomic bool
	// Chunk is the bytes per I/O (default 1 MiB); Depth the I/Os in
	// flight (default 8).
	Chunk, Depth int
}

func (o *Options) chunkDepth() (int, int) {
	chunk, depth := 1<<20, 8
	if o != nil && o.Chunk > 0 {
		chunk = o.Chunk
	}
	if o != nil && o.Depth > 0 {
		depth = o.Depth
	}
	return chunk, depth
}

// Writer collects tensors and writes them as one safetensors file through
// an fs.Client when closed.
type Writer struct {
	c       *fs.Client
	name    string
	opts    Options
	entries []Entry
	seen    map[string]bool
}

// NewWriter returns a Writer that will create name (relative names resolve
// under the Client's root). opts may be nil.
func NewWriter(c *fs.Client, name string, opts *Options) *Writer {
	w := &Writer{c: c, name: name, seen: map[string]bool{}}
	if opts != nil {
		w.opts = *opts
	}
	return w
}

// Add queues t under name; the tensor's Data must stay unchanged until
// Close. Errors: ErrFormat for an empty, reserved or duplicate name.
func (w *Writer) Add(name string, t *tensor.Tensor) error {
	if name == "" || name == "__metadata__" {
		return fmt.Errorf("%w: tensor name %q is reserved", ErrFormat, name)
	}
	if w.seen[name] {
		return fmt.Errorf("%w: duplicate tensor name %q", ErrFormat, name)
	}
	w.seen[name] = true
	w.entries = append(w.entries, Entry{Name: name, Tensor: t})
	return nil
}

// SetMetadata sets one "__metadata__" entry.
func (w *Writer) SetMetadata(key, value string) {
	if w.opts.Metadata == nil {
		w.opts.Metadata = map[string]string{}
	}
	w.opts.Metadata[key] = value
}

// Close writes the file (see Write).
func (w *Writer) Close(ctx context.Context) error {
	return Write(ctx, w.c, w.name, w.entries, &w.opts)
}

// Write writes entries as one safetensors file named name through c: the
// header and tensor bytes are copied into a registered fs.Buffer and
// written by a write ring, Depth chunks in flight, then the file is
// fsynced (and renamed into place with Options.Atomic). Errors: those of
// EncodeHeader, the fs errors of open/prep/submit, a completion's errno
// (EIO, ENOSPC, ...), or ctx.Err(); fs.ErrInvalid for a nil c.
func Write(ctx context.Context, c *fs.Client, name string, entries []Entry, opts *Options) (err error) {
	if err := checkClient(c); err != nil {
		return err
	}
	var meta map[string]string
	if opts != nil {
		meta = opts.Metadata
	}
	header, order, err := EncodeHeader(entries, meta)
	if err != nil {
		return err
	}
	target := name
	atomic := opts != nil && opts.Atomic
	if atomic {
		if c.Backend() == "mem" {
			return fmt.Errorf("%w: Atomic write needs rename, which the mem backend lacks", fs.ErrUnsupported)
		}
		target = name + ".tmp"
	}
	f, err := c.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil && atomic {
			// Leave no half-written NAME.tmp behind to fill the disk.
			os.Remove(rootPath(c, target))
		}
	}()
	chunk, depth := opts.chunkDepth()
	buf, err := c.NewBuffer(chunk*depth, fs.BufferOpts{BlockSize: chunk})
	if err != nil {
		return err
	}
	ring, err := c.NewRing(fs.RingOpts{Entries: depth, Op: fs.Write})
	if err != nil {
		buf.Close()
		return err
	}
	defer func() {
		ring.Close()
		buf.Close()
	}()
	// The byte stream: header, then each tensor's bytes in data order.
	parts := make([][]byte, 0, len(order)+1)
	parts = append(parts, header)
	for _, e := range order {
		parts = append(parts, e.Tensor.Data[:e.Tensor.Len()*e.Tensor.DType.Size()])
	}
	var total int64
	for _, p := range parts {
		total += int64(len(p))
	}
	s := &streamer{ring: ring, buf: buf, f: f, chunk: chunk, out: make([]fs.Completion, depth), fileOff: make([]int64, depth), want: make([]int, depth)}
	free := make([]int, 0, depth)
	for i := depth - 1; i >= 0; i-- {
		free = append(free, i)
	}
	pi, po := 0, 0 // position in parts
	var off int64
	for off < total {
		if len(free) == 0 {
			got, err := s.reap(ctx)
			if err != nil {
				return err
			}
			free = append(free, got...)
		}
		k := free[len(free)-1]
		free = free[:len(free)-1]
		dst := buf.Bytes()[k*chunk : (k+1)*chunk]
		n := 0
		for n < chunk && pi < len(parts) {
			m := copy(dst[n:], parts[pi][po:])
			n += m
			po += m
			if po == len(parts[pi]) {
				pi, po = pi+1, 0
			}
		}
		if err := s.start(k, off, 0, n); err != nil {
			return err
		}
		off += int64(n)
		if err := ring.Submit(); err != nil {
			return err
		}
	}
	for s.pending > 0 {
		if _, err := s.reap(ctx); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if atomic {
		closed = true
		if err := f.Close(); err != nil {
			return err
		}
		to := rootPath(c, name)
		if err := os.Rename(rootPath(c, target), to); err != nil {
			return err
		}
		if d, err := os.Open(filepath.Dir(to)); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return nil
}

// checkClient reports a nil Client as fs.ErrInvalid, so that the entry
// points fail with an error instead of dereferencing it.
func checkClient(c *fs.Client) error {
	if c == nil {
		return fmt.Errorf("safetensors: nil fs.Client: %w", fs.ErrInvalid)
	}
	return nil
}

// rootPath resolves name under c's root, as c.OpenFile does.
func rootPath(c *fs.Client, name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(c.Root(), name)
}

// streamer runs chunk I/Os on a ring, resubmitting the rest of a chunk
// after a short transfer. Chunk k lies at buffer offset base+k*chunk.
type streamer struct {
	ring    *fs.Ring
	buf     *fs.Buffer
	base    int
	f       *fs.File
	chunk   int
	out     []fs.Completion
	fileOff []int64 // per chunk: file offset of the I/O in flight
	want    []int   // per chunk: bytes asked
	boff    []int
	pending int
}

func (s *streamer) start(k int, fileOff int64, at, n int) error {
	if s.boff == nil {
		s.boff = make([]int, len(s.want))
	}
	reg, err := s.buf.Region(s.base+k*s.chunk+at, n)
	if err != nil {
		return err
	}
	if _, err := s.ring.Prep(fs.Req{File: s.f, Off: fileOff, Buf: reg, Tag: uint64(k)}); err != nil {
		return err
	}
	s.fileOff[k], s.want[k], s.boff[k] = fileOff, n, at
	s.pending++
	return nil
}

// reap waits for at least one completion and returns the chunks that are
// done; short transfers are resubmitted, a transfer of 0 bytes is an error.
func (s *streamer) reap(ctx context.Context) ([]int, error) {
	n, err := s.ring.Wait(ctx, s.out, 1)
	if err != nil {
		return nil, err
	}
	var done []int
	resub := false
	for _, cp := range s.out[:n] {
		s.pending--
		k := int(cp.Tag)
		if cp.Err != nil {
			return nil, fmt.Errorf("safetensors: I/O at offset %d: %w", s.fileOff[k], cp.Err)
		}
		if int(cp.N) < s.want[k] {
			if cp.N == 0 {
				return nil, fmt.Errorf("%w: I/O at offset %d transferred 0 of %d bytes", ErrTruncated, s.fileOff[k], s.want[k])
			}
			if err := s.start(k, s.fileOff[k]+cp.N, s.boff[k]+int(cp.N), s.want[k]-int(cp.N)); err != nil {
				return nil, err
			}
			resub = true
			continue
		}
		done = append(done, k)
	}
	if resub {
		if err := s.ring.Submit(); err != nil {
			return nil, err
		}
	}
	return done, nil
}

// readChunks reads n > 0 bytes at file offset off of f into buf at offset
// base through ring, in chunk-byte reads with up to depth in flight (out
// holds depth completions); short reads are resubmitted.
func readChunks(ctx context.Context, ring *fs.Ring, f *fs.File, buf *fs.Buffer, base int, off, n int64, chunk, depth int, out []fs.Completion) error {
	nchunks := int((n + int64(chunk) - 1) / int64(chunk))
	s := &streamer{ring: ring, buf: buf, base: base, f: f, chunk: chunk, out: out, fileOff: make([]int64, nchunks), want: make([]int, nchunks)}
	next := 0
	for next < nchunks || s.pending > 0 {
		for next < nchunks && s.pending < depth {
			k := int(min(int64(chunk), n-int64(next)*int64(chunk)))
			if err := s.start(next, off+int64(next)*int64(chunk), 0, k); err != nil {
				return err
			}
			next++
		}
		if err := ring.Submit(); err != nil {
			return err
		}
		if _, err := s.reap(ctx); err != nil {
			return err
		}
	}
	return nil
}

// File is an open safetensors file whose data section is in memory: a
// registered fs.Buffer filled by read rings (Open) or a read-only mmap
// (OpenMmap). Tensors alias that memory (no copy) and stay valid until
// Close.
type File struct {
	Header *Header // the parsed header
	data   []byte
	close  func() error
}

// Open reads name through c: the header with File.ReadAt, then the whole
// data section by a read ring straight into one registered Buffer (Depth
// chunk reads in flight). Errors: ErrFormat/ErrTruncated for a malformed
// or short file, tensor.ErrDType for an unsupported dtype, fs and errno
// errors from the I/O, ctx.Err(); fs.ErrInvalid for a nil c.
func Open(ctx context.Context, c *fs.Client, name string, opts *Options) (*File, error) {
	if err := checkClient(c); err != nil {
		return nil, err
	}
	f, err := c.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	h, err := readHeader(f, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	st := &File{Header: h, close: func() error { return nil }}
	if h.DataSize == 0 {
		return st, nil
	}
	chunk, depth := opts.chunkDepth()
	nchunks := int((h.DataSize + int64(chunk) - 1) / int64(chunk))
	buf, err := c.NewBuffer(nchunks*chunk, fs.BufferOpts{BlockSize: chunk})
	if err != nil {
		return nil, err
	}
	ring, err := c.NewRing(fs.RingOpts{Entries: depth, Op: fs.Read})
	if err != nil {
		buf.Close()
		return nil, err
	}
	defer ring.Close()
	fail := func(err error) (*File, error) {
		ring.Close()
		buf.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := readChunks(ctx, ring, f, buf, 0, h.DataOffset, h.DataSize, chunk, depth, make([]fs.Completion, depth)); err != nil {
		return fail(err)
	}
	ring.Close()
	st.data = buf.Bytes()[:h.DataSize]
	st.close = buf.Close
	return st, nil
}

func readHeader(f interface {
	ReadAt([]byte, int64) (int, error)
}, size int64) (*Header, error) {
	var pre [8]byte
	if n, err := f.ReadAt(pre[:], 0); n < 8 {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err // an I/O error (a directory, EIO), not a short file
		}
		return nil, fmt.Errorf("%w: %d bytes, need 8 for the header length", ErrTruncated, n)
	}
	hl := binary.LittleEndian.Uint64(pre[:])
	if hl > MaxHeaderSize {
		return nil, fmt.Errorf("%w: header length %d exceeds %d", ErrFormat, hl, MaxHeaderSize)
	}
	if int64(hl) > size-8 {
		if size < 8 { // the size came from stat: not a regular file (a device, /proc)
			return nil, fmt.Errorf("%w: header length %d, but the file's size is %d (not a regular file?)", ErrTruncated, hl, size)
		}
		return nil, fmt.Errorf("%w: header length %d, file has %d bytes after it", ErrTruncated, hl, size-8)
	}
	b := make([]byte, 8+hl)
	copy(b, pre[:])
	if n, err := f.ReadAt(b[8:], 8); n < int(hl) {
		return nil, fmt.Errorf("%w: reading header: %v", ErrTruncated, err)
	}
	return ParseHeader(b, size)
}

// OpenMmap maps path read-only and parses it; tensors alias the mapping
// (do not write to their Data). It needs no fs.Client. Where the platform
// has no file mappings (Windows) it reads the file into memory instead.
func OpenMmap(path string) (*File, error) {
	osf, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer osf.Close()
	st, err := osf.Stat()
	if err != nil {
		return nil, err
	}
	h, err := readHeader(osf, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f := &File{Header: h, close: func() error { return nil }}
	if st.Size() == 0 || h.DataSize == 0 {
		return f, nil
	}
	m, err := mmap.MapFile(osf, int(st.Size()))
	if errors.Is(err, mmap.ErrUnavailable) {
		// No file mappings on this platform: read the file instead.
		m = make([]byte, st.Size())
		if _, err := osf.ReadAt(m, 0); err != nil {
			return nil, fmt.Errorf("safetensors: read %s: %w", path, err)
		}
		f.data = m[h.DataOffset : h.DataOffset+h.DataSize]
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("safetensors: mmap %s: %w", path, err)
	}
	f.data = m[h.DataOffset : h.DataOffset+h.DataSize]
	f.close = func() error { return mmap.Unmap(m) }
	return f, nil
}

// Parse parses a whole safetensors file held in memory; tensors alias b.
func Parse(b []byte) (*File, error) {
	h, err := ParseHeader(b, int64(len(b)))
	if err != nil {
		return nil, err
	}
	return &File{Header: h, data: b[h.DataOffset : h.DataOffset+h.DataSize], close: func() error { return nil }}, nil
}

// Names returns the tensor names in file order.
func (f *File) Names() []string {
	out := make([]string, len(f.Header.Tensors))
	for i, t := range f.Header.Tensors {
		out[i] = t.Name
	}
	return out
}

// Metadata returns the "__metadata__" map (nil when absent).
func (f *File) Metadata() map[string]string { return f.Header.Metadata }

// Tensor returns the tensor called name, contiguous, with Data aliasing the
// file's memory. Errors: ErrNotFound (naming the tensor).
func (f *File) Tensor(name string) (*tensor.Tensor, error) {
	ti, ok := f.Header.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return &tensor.Tensor{
		DType:   ti.DType,
		Shape:   append([]int(nil), ti.Shape...),
		Strides: tensor.ContiguousStrides(ti.Shape),
		Data:    f.data[ti.Begin:ti.End:ti.End],
	}, nil
}

// Tensors returns every tensor by name.
func (f *File) Tensors() map[string]*tensor.Tensor {
	out := make(map[string]*tensor.Tensor, len(f.Header.Tensors))
	for _, ti := range f.Header.Tensors {
		out[ti.Name], _ = f.Tensor(ti.Name)
	}
	return out
}

// Close releases the memory the tensors alias.
func (f *File) Close() error {
	if f.close == nil {
		return nil
	}
	c := f.close
	f.close = nil
	f.data = nil
	return c()
}
