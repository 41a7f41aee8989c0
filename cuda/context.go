package cuda

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// Context is a CUDA device's primary context, driven from one goroutine
// locked to its OS thread: the current CUDA context is per thread and
// goroutines migrate, so every call that needs the context is queued to that
// goroutine and runs there, in order. A Context is safe for concurrent use;
// calls from several goroutines are serialised.
//
// Upstream: cuDevicePrimaryCtxRetain / cuCtxSetCurrent, as PyTorch and
// DeepGEMM use the primary context; the executor design follows the
// go_ecosystem brief (one locked goroutine per context).
type Context struct {
	drv  *Driver
	dev  int32
	info DeviceInfo

	mu     sync.RWMutex // held for reading by calls in flight, for writing by Close
	closed bool
	calls  chan request
	done   chan error // receives the primary-context release status
}

type request struct {
	f    func() error
	done chan error
}

// Open loads the system CUDA driver (once per process) and opens device
// ordinal's primary context. Without a driver or device the error wraps
// ErrUnavailable.
func Open(ordinal int) (*Context, error) {
	d, err := SystemDriver()
	if err != nil {
		return nil, err
	}
	return d.Open(ordinal)
}

// Open retains device ordinal's primary context and starts the goroutine
// that owns it. Close releases it.
func (d *Driver) Open(ordinal int) (*Context, error) {
	c := &Context{drv: d, calls: make(chan request), done: make(chan error, 1)}
	ready := make(chan error, 1)
	go c.loop(ordinal, ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Context) loop(ordinal int, ready chan<- error) {
	// The goroutine keeps the thread locked until it returns; the thread is
	// then discarded, and with it the thread's current-context binding.
	runtime.LockOSThread()
	dev, info, err := c.drv.device(ordinal)
	if err == nil {
		c.dev, c.info = dev, info
		var pctx uintptr
		if err = c.drv.call(fnPrimaryCtxRetain, uintptr(unsafe.Pointer(&pctx)), uintptr(dev)); err == nil {
			if err = c.drv.call(fnCtxSetCurrent, pctx); err != nil {
				c.drv.call(fnPrimaryCtxRelease, uintptr(dev))
			}
		}
	}
	ready <- err
	if err != nil {
		return
	}
	for req := range c.calls {
		req.done <- runSafely(req.f)
	}
	c.drv.call(fnCtxSynchronize)
	c.drv.call(fnCtxSetCurrent, 0)
	c.done <- c.drv.call(fnPrimaryCtxRelease, uintptr(c.dev))
}

// runSafely runs f, turning a panic into an error so that the context's
// goroutine survives a bad call.
func runSafely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cuda: panic in context call: %v", r)
		}
	}()
	return f()
}

// Do runs f on the context's OS thread, with the context current, and
// returns its error. f must not call methods of c (they queue to the same
// thread and would wait forever); it may call the Driver directly through
// the package's exported Driver methods.
func (c *Context) Do(f func() error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	req := request{f: f, done: make(chan error, 1)}
	c.calls <- req
	return <-req.done
}

// Close waits for calls in flight, synchronises the device, releases the
// primary context and stops the context's goroutine. Memory, modules,
// streams and events of the context must not be used afterwards. Closing
// twice is harmless.
func (c *Context) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.calls)
	return <-c.done
}

// Info describes the context's device.
func (c *Context) Info() DeviceInfo { return c.info }

// Driver returns the driver the context was opened from.
func (c *Context) Driver() *Driver { return c.drv }

// Synchronize waits for all work on the device (cuCtxSynchronize).
func (c *Context) Synchronize() error {
	return c.Do(func() error { return c.drv.call(fnCtxSynchronize) })
}

// MemInfo returns the free and total device memory in bytes (cuMemGetInfo_v2).
func (c *Context) MemInfo() (free, total uint64, err error) {
	err = c.Do(func() error {
		var f, t uintptr
		if err := c.drv.call(fnMemGetInfo, uintptr(unsafe.Pointer(&f)), uintptr(unsafe.Pointer(&t))); err != nil {
			return err
		}
		free, total = uint64(f), uint64(t)
		return nil
	})
	return free, total, err
}

// DevicePtr is a device address (CUdeviceptr).
type DevicePtr uint64

// Add returns p advanced by off bytes.
func (p DevicePtr) Add(off int) DevicePtr { return p + DevicePtr(off) }

// Buffer is device memory allocated with Context.Alloc.
type Buffer struct {
	Ptr  DevicePtr // device address, 256-byte aligned
	Size int       // bytes
	ctx  *Context
	once sync.Once
}

// Alloc allocates size bytes of device memory (cuMemAlloc_v2). The memory is
// not initialised. A failure for lack of memory matches ErrOutOfMemory.
func (c *Context) Alloc(size int) (*Buffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("%w: Alloc size %d must be positive", ErrInvalid, size)
	}
	b := &Buffer{Size: size, ctx: c}
	err := c.Do(func() error {
		var p uint64
		if err := c.drv.call(fnMemAlloc, uintptr(unsafe.Pointer(&p)), uintptr(size)); err != nil {
			return err
		}
		b.Ptr = DevicePtr(p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Free releases the buffer (cuMemFree_v2); freeing twice is harmless.
func (b *Buffer) Free() error {
	var err error
	b.once.Do(func() {
		err = b.ctx.Do(func() error { return b.ctx.drv.call(fnMemFree, uintptr(b.Ptr)) })
	})
	return err
}

// CopyHtoD copies src to device address dst (cuMemcpyHtoD_v2, synchronous).
func (c *Context) CopyHtoD(dst DevicePtr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	return c.Do(func() error {
		return c.drv.call(fnMemcpyHtoD, uintptr(dst), uintptr(unsafe.Pointer(&src[0])), uintptr(len(src)))
	})
}

// CopyDtoH copies len(dst) bytes from device address src (cuMemcpyDtoH_v2,
// synchronous: it waits for prior work on the legacy stream).
func (c *Context) CopyDtoH(dst []byte, src DevicePtr) error {
	if len(dst) == 0 {
		return nil
	}
	return c.Do(func() error {
		return c.drv.call(fnMemcpyDtoH, uintptr(unsafe.Pointer(&dst[0])), uintptr(src), uintptr(len(dst)))
	})
}

// CopyDtoD copies n bytes between device addresses (cuMemcpyDtoD_v2).
func (c *Context) CopyDtoD(dst, src DevicePtr, n int) error {
	if n < 0 {
		return fmt.Errorf("%w: CopyDtoD byte count %d", ErrInvalid, n)
	}
	if n == 0 {
		return nil
	}
	return c.Do(func() error { return c.drv.call(fnMemcpyDtoD, uintptr(dst), uintptr(src), uintptr(n)) })
}

// Memset sets n bytes at dst to v (cuMemsetD8_v2).
func (c *Context) Memset(dst DevicePtr, v byte, n int) error {
	if n < 0 {
		return fmt.Errorf("%w: Memset byte count %d", ErrInvalid, n)
	}
	return c.Do(func() error { return c.drv.call(fnMemsetD8, uintptr(dst), uintptr(v), uintptr(n)) })
}

// Upload allocates a buffer holding a copy of src.
func (c *Context) Upload(src []byte) (*Buffer, error) {
	b, err := c.Alloc(len(src))
	if err != nil {
		return nil, err
	}
	if err := c.CopyHtoD(b.Ptr, src); err != nil {
		b.Free()
		return nil, err
	}
	return b, nil
}

// Stream is a CUDA stream (CUstream) of a context.
type Stream struct {
	h   uintptr
	ctx *Context
}

// NewStream creates a non-blocking stream (cuStreamCreate with
// CU_STREAM_NON_BLOCKING).
func (c *Context) NewStream() (*Stream, error) {
	s := &Stream{ctx: c}
	err := c.Do(func() error { return c.drv.call(fnStreamCreate, uintptr(unsafe.Pointer(&s.h)), 1) })
	if err != nil {
		return nil, err
	}
	return s, nil
}

// handle returns the CUstream, 0 (the legacy default stream) for nil.
func (s *Stream) handle() uintptr {
	if s == nil {
		return 0
	}
	return s.h
}

// Synchronize waits for the stream's work (cuStreamSynchronize).
func (s *Stream) Synchronize() error {
	return s.ctx.Do(func() error { return s.ctx.drv.call(fnStreamSynchronize, s.h) })
}

// Destroy destroys the stream (cuStreamDestroy_v2).
func (s *Stream) Destroy() error {
	return s.ctx.Do(func() error { return s.ctx.drv.call(fnStreamDestroy, s.h) })
}

// Event is a CUDA event (CUevent), used to time device work.
type Event struct {
	h   uintptr
	ctx *Context
}

// NewEvent creates an event with default flags (timing enabled).
func (c *Context) NewEvent() (*Event, error) {
	e := &Event{ctx: c}
	err := c.Do(func() error { return c.drv.call(fnEventCreate, uintptr(unsafe.Pointer(&e.h)), 0) })
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Record records the event on stream s (nil: the legacy default stream).
func (e *Event) Record(s *Stream) error {
	return e.ctx.Do(func() error { return e.ctx.drv.call(fnEventRecord, e.h, s.handle()) })
}

// Synchronize waits for the event (cuEventSynchronize).
func (e *Event) Synchronize() error {
	return e.ctx.Do(func() error { return e.ctx.drv.call(fnEventSynchronize, e.h) })
}

// Elapsed returns the milliseconds between start and e, both recorded and
// completed (cuEventElapsedTime; about 0.5 µs resolution).
func (e *Event) Elapsed(start *Event) (ms float32, err error) {
	err = e.ctx.Do(func() error {
		return e.ctx.drv.call(fnEventElapsedTime, uintptr(unsafe.Pointer(&ms)), start.h, e.h)
	})
	return ms, err
}

// Destroy destroys the event (cuEventDestroy_v2).
func (e *Event) Destroy() error {
	return e.ctx.Do(func() error { return e.ctx.drv.call(fnEventDestroy, e.h) })
}

// Module is loaded device code (CUmodule).
type Module struct {
	h   uintptr
	ctx *Context
}

// LoadModule loads a CUBIN, fatbin or NUL-terminated PTX image
// (cuModuleLoadData).
func (c *Context) LoadModule(image []byte) (*Module, error) {
	if len(image) == 0 {
		return nil, fmt.Errorf("%w: LoadModule image is empty", ErrInvalid)
	}
	m := &Module{ctx: c}
	err := c.Do(func() error {
		return c.drv.call(fnModuleLoadData, uintptr(unsafe.Pointer(&m.h)), uintptr(unsafe.Pointer(&image[0])))
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Function is a kernel of a loaded module (CUfunction).
type Function struct {
	h    uintptr
	name string
	ctx  *Context
}

// Function looks up the kernel by its (mangled) name (cuModuleGetFunction).
func (m *Module) Function(name string) (*Function, error) {
	f := &Function{name: name, ctx: m.ctx}
	cname := cstr(name)
	err := m.ctx.Do(func() error {
		return m.ctx.drv.call(fnModuleGetFunction, uintptr(unsafe.Pointer(&f.h)), m.h, uintptr(unsafe.Pointer(&cname[0])))
	})
	if err != nil {
		return nil, fmt.Errorf("kernel %q: %w", name, err)
	}
	return f, nil
}

// Unload unloads the module (cuModuleUnload).
func (m *Module) Unload() error {
	return m.ctx.Do(func() error { return m.ctx.drv.call(fnModuleUnload, m.h) })
}

// Name returns the kernel's name.
func (f *Function) Name() string { return f.name }

const funcAttrMaxDynamicShared = 8 // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES

// SetMaxDynamicSharedMemory lets launches of f ask for up to bytes of
// dynamic shared memory (needed above 48 KiB; cuFuncSetAttribute).
func (f *Function) SetMaxDynamicSharedMemory(bytes int) error {
	if bytes < 0 {
		return fmt.Errorf("%w: dynamic shared memory %d bytes", ErrInvalid, bytes)
	}
	return f.ctx.Do(func() error {
		return f.ctx.drv.call(fnFuncSetAttribute, f.h, funcAttrMaxDynamicShared, uintptr(bytes))
	})
}
