package ucx

import (
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"github.com/fireflyer-go/fireflyer/ep"
)

// Thin wrappers over the UCP calls this package makes. None of them locks:
// the caller serializes every call on one worker (UCS_THREAD_MODE_SERIALIZED).

// StatusError is a failed UCP call: the function, the ucs_status_t code
// and UCX's message for it. It unwraps to ep.ErrTransport.
type StatusError struct {
	Func string // the UCP function, e.g. "ucp_put_nbx"
	Code int    // the ucs_status_t, e.g. -25 (UCS_ERR_CONNECTION_RESET)
	Msg  string // ucs_status_string(Code)
}

// Error returns "ucx: FUNC: MESSAGE (status CODE)".
func (e *StatusError) Error() string {
	return fmt.Sprintf("ucx: %s: %s (status %d)", e.Func, e.Msg, e.Code)
}

// Unwrap returns ep.ErrTransport.
func (e *StatusError) Unwrap() error { return ep.ErrTransport }

func (l *lib) statusErr(fn string, st int32) error {
	r := ccall(l.fns[fnStatusString], uintptr(int64(st)))
	return &StatusError{Func: fn, Code: int(st), Msg: goString(r)}
}

// check turns a ucs_status_t result into an error (nil for UCS_OK).
func (l *lib) check(fn string, r uintptr) error {
	if st := int32(int8(r)); st != ucsOK { // ucs_status_t is a packed (1-byte) enum
		return l.statusErr(fn, st)
	}
	return nil
}

// request is a ucs_status_ptr_t: 0 (done), an error status, or a request
// handle to poll.
type request uintptr

func isErrPtr(p uintptr) bool { return int64(p) < 0 && int64(p) >= ucsErrLast }

// ptrStatus splits a ucs_status_ptr_t returned by fn: a request to poll
// (0 when the operation completed at once) or the error.
func (l *lib) ptrStatus(fn string, p uintptr) (request, error) {
	if isErrPtr(p) {
		return 0, l.statusErr(fn, int32(int64(p)))
	}
	return request(p), nil
}

// status polls req: ucsInProgress, ucsOK or an error code.
func (l *lib) status(req request) int32 {
	return int32(int8(ccall(l.fns[fnRequestCheckStatus], uintptr(req))))
}

func (l *lib) free(req request) {
	if req != 0 {
		ccall(l.fns[fnRequestFree], uintptr(req))
	}
}

// goString copies the NUL-terminated C string at address p (at most 64 KiB).
func goString(p uintptr) string {
	if p == 0 {
		return ""
	}
	b := *(*unsafe.Pointer)(unsafe.Pointer(&p))
	n := 0
	for n < 1<<16 && *(*byte)(unsafe.Add(b, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(b), n))
}

// cBytes copies n bytes of C memory at address p.
func cBytes(p uintptr, n int) []byte {
	if p == 0 || n <= 0 {
		return nil
	}
	b := *(*unsafe.Pointer)(unsafe.Pointer(&p))
	return append([]byte(nil), unsafe.Slice((*byte)(b), n)...)
}

// cstr returns s as a NUL-terminated byte slice for C.
func cstr(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
}

// newContext reads UCX's configuration from the environment (UCX_*),
// applies overrides (names without the UCX_ prefix: "TLS" → "tcp,self")
// and creates a UCP context with the tag and RMA features.
func (l *lib) newContext(overrides map[string]string, name string) (uintptr, error) {
	var cfg uintptr
	if err := l.check("ucp_config_read", ccall(l.fns[fnConfigRead], 0, 0, uintptr(unsafe.Pointer(&cfg)))); err != nil {
		return 0, fmt.Errorf("%w: reading UCX_* environment: %w", ep.ErrConfig, err)
	}
	defer ccall(l.fns[fnConfigRelease], cfg)
	for k, v := range overrides {
		kb, vb := cstr(k), cstr(v)
		if err := l.check("ucp_config_modify", ccall(l.fns[fnConfigModify], cfg, uintptr(unsafe.Pointer(&kb[0])), uintptr(unsafe.Pointer(&vb[0])))); err != nil {
			return 0, fmt.Errorf("%w: UCX option %s=%q: %w", ep.ErrConfig, k, v, err)
		}
	}
	nb := cstr(name)
	p := ucpParams{fieldMask: ucpParamFieldFeatures | ucpParamFieldName, features: ucpFeatureTag | ucpFeatureRMA, name: uintptr(unsafe.Pointer(&nb[0]))}
	var ctx uintptr
	err := l.check("ucp_init", ccall(l.fns[fnInitVersion], ucpAPIMajor, ucpAPIMinor, uintptr(unsafe.Pointer(&p)), cfg, uintptr(unsafe.Pointer(&ctx))))
	runtime.KeepAlive(nb)
	if err != nil {
		return 0, err
	}
	return ctx, nil
}

func (l *lib) cleanup(ctx uintptr) { ccall(l.fns[fnCleanup], ctx) }

// contextInfo returns what ucp_context_print_info prints for ctx.
func (l *lib) contextInfo(ctx uintptr) string {
	var buf, size uintptr
	fp := ccall(l.fns[fnOpenMemstream], uintptr(unsafe.Pointer(&buf)), uintptr(unsafe.Pointer(&size)))
	if fp == 0 {
		return ""
	}
	ccall(l.fns[fnContextPrintInfo], ctx, fp)
	ccall(l.fns[fnFclose], fp)
	s := string(cBytes(buf, int(size)))
	ccall(l.fns[fnFree], buf)
	return s
}

// transportsOf lists the transport/device pairs of the "resource" lines of
// ucp_context_print_info's text ("tcp/lo", "posix/memory", ...), in order.
func transportsOf(info string) []string {
	var out []string
	for _, line := range strings.Split(info, "\n") {
		if !strings.Contains(line, "resource") {
			continue
		}
		f := strings.Fields(line)
		if len(f) > 0 && strings.Contains(f[len(f)-1], "/") {
			out = append(out, f[len(f)-1])
		}
	}
	return out
}

func (l *lib) newWorker(ctx uintptr) (uintptr, error) {
	p := ucpWorkerParams{fieldMask: ucpWorkerParamFieldThreadMode, threadMode: ucsThreadModeSerialized}
	var w uintptr
	if err := l.check("ucp_worker_create", ccall(l.fns[fnWorkerCreate], ctx, uintptr(unsafe.Pointer(&p)), uintptr(unsafe.Pointer(&w)))); err != nil {
		return 0, err
	}
	return w, nil
}

func (l *lib) destroyWorker(w uintptr) { ccall(l.fns[fnWorkerDestroy], w) }

// workerAddress returns a copy of the worker's address blob.
func (l *lib) workerAddress(w uintptr) ([]byte, error) {
	var a, n uintptr
	if err := l.check("ucp_worker_get_address", ccall(l.fns[fnWorkerGetAddress], w, uintptr(unsafe.Pointer(&a)), uintptr(unsafe.Pointer(&n)))); err != nil {
		return nil, err
	}
	b := cBytes(a, int(n))
	ccall(l.fns[fnWorkerReleaseAddress], w, a)
	return b, nil
}

func (l *lib) progress(w uintptr) uint32 { return uint32(ccall(l.fns[fnWorkerProgress], w)) }

// newEp connects to the worker at addr, with peer error handling when
// peerErrors is set, so that a peer that dies fails the operations to it
// instead of hanging them; UCX then reports the endpoint's failure to
// epFailed with errArg.
func (l *lib) newEp(w uintptr, addr []byte, peerErrors bool, errArg uintptr) (uintptr, error) {
	p := ucpEpParams{fieldMask: ucpEpParamFieldRemoteAddress, address: uintptr(unsafe.Pointer(&addr[0]))}
	if peerErrors {
		p.fieldMask |= ucpEpParamFieldErrHandlingMode
		p.errMode = ucpErrHandlingModePeer
		if cb := errCallback(); cb != 0 {
			p.fieldMask |= ucpEpParamFieldErrHandler
			p.errCB, p.errArg = cb, errArg
		}
	}
	var e uintptr
	err := l.check("ucp_ep_create", ccall(l.fns[fnEpCreate], w, uintptr(unsafe.Pointer(&p)), uintptr(unsafe.Pointer(&e))))
	runtime.KeepAlive(addr)
	if err != nil {
		return 0, err
	}
	return e, nil
}

var (
	noParam    ucpRequestParam // no callback, no flags: every request is polled
	forceParam = ucpRequestParam{opAttrMask: ucpOpAttrFieldFlags, flags: ucpEpCloseFlagForce}
)

func (l *lib) closeEp(e uintptr, force bool) (request, error) {
	p := &noParam
	if force {
		p = &forceParam
	}
	return l.ptrStatus("ucp_ep_close_nbx", ccall(l.fns[fnEpCloseNbx], e, uintptr(unsafe.Pointer(p))))
}

func (l *lib) flushEp(e uintptr) (request, error) {
	return l.ptrStatus("ucp_ep_flush_nbx", ccall(l.fns[fnEpFlushNbx], e, uintptr(unsafe.Pointer(&noParam))))
}

// memMap registers n bytes at address a for remote access.
func (l *lib) memMap(ctx uintptr, a unsafe.Pointer, n int) (uintptr, error) {
	p := ucpMemMapParams{fieldMask: ucpMemMapParamFieldAddress | ucpMemMapParamFieldLength, address: uintptr(a), length: uint64(n)}
	var m uintptr
	if err := l.check("ucp_mem_map", ccall(l.fns[fnMemMap], ctx, uintptr(unsafe.Pointer(&p)), uintptr(unsafe.Pointer(&m)))); err != nil {
		return 0, err
	}
	return m, nil
}

// memAlloc has UCX allocate and register n bytes (UCP_MEM_MAP_ALLOCATE:
// shared memory that peers on this host map, when a shared-memory
// transport is enabled) and returns the handle and the memory.
func (l *lib) memAlloc(ctx uintptr, n int) (uintptr, unsafe.Pointer, error) {
	p := ucpMemMapParams{fieldMask: ucpMemMapParamFieldAddress | ucpMemMapParamFieldLength | ucpMemMapParamFieldFlags, length: uint64(n), flags: ucpMemMapAllocate}
	var m uintptr
	if err := l.check("ucp_mem_map", ccall(l.fns[fnMemMap], ctx, uintptr(unsafe.Pointer(&p)), uintptr(unsafe.Pointer(&m)))); err != nil {
		return 0, nil, err
	}
	a := ucpMemAttr{fieldMask: ucpMemAttrFieldAddress | ucpMemAttrFieldLength}
	if err := l.check("ucp_mem_query", ccall(l.fns[fnMemQuery], m, uintptr(unsafe.Pointer(&a)))); err != nil || a.address == 0 || a.length < uint64(n) {
		_ = l.memUnmap(ctx, m)
		if err == nil {
			err = fmt.Errorf("%w: ucp_mem_query: %d bytes at %#x, want %d", ep.ErrTransport, a.length, a.address, n)
		}
		return 0, nil, err
	}
	return m, *(*unsafe.Pointer)(unsafe.Pointer(&a.address)), nil
}

func (l *lib) memUnmap(ctx, m uintptr) error {
	return l.check("ucp_mem_unmap", ccall(l.fns[fnMemUnmap], ctx, m))
}

// rkeyPack returns a copy of the packed remote key of m.
func (l *lib) rkeyPack(ctx, m uintptr) ([]byte, error) {
	var b, n uintptr
	if err := l.check("ucp_rkey_pack", ccall(l.fns[fnRkeyPack], ctx, m, uintptr(unsafe.Pointer(&b)), uintptr(unsafe.Pointer(&n)))); err != nil {
		return nil, err
	}
	out := cBytes(b, int(n))
	ccall(l.fns[fnRkeyBufferRelease], b)
	return out, nil
}

func (l *lib) rkeyUnpack(e uintptr, packed []byte) (uintptr, error) {
	var k uintptr
	err := l.check("ucp_ep_rkey_unpack", ccall(l.fns[fnEpRkeyUnpack], e, uintptr(unsafe.Pointer(&packed[0])), uintptr(unsafe.Pointer(&k))))
	runtime.KeepAlive(packed)
	if err != nil {
		return 0, err
	}
	return k, nil
}

func (l *lib) rkeyDestroy(k uintptr) { ccall(l.fns[fnRkeyDestroy], k) }

// rkeyPtr returns the n bytes of remote memory at raddr as this process
// maps them (ucp_rkey_ptr), or nil when the remote key gives no local
// pointer (the peer is not reached through shared memory) or does not map
// the n bytes contiguously.
func (l *lib) rkeyPtr(k uintptr, raddr uint64, n int) []byte {
	if n <= 0 {
		return nil
	}
	var first, last uintptr
	if l.check("ucp_rkey_ptr", ccall(l.fns[fnRkeyPtr], k, uintptr(raddr), uintptr(unsafe.Pointer(&first)))) != nil ||
		l.check("ucp_rkey_ptr", ccall(l.fns[fnRkeyPtr], k, uintptr(raddr+uint64(n-1)), uintptr(unsafe.Pointer(&last)))) != nil ||
		first == 0 || last-first != uintptr(n-1) {
		return nil
	}
	return unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&first))), n)
}

// put starts ucp_put_nbx of n bytes at src to remote address raddr.
func (l *lib) put(e uintptr, src unsafe.Pointer, n int, raddr uint64, rkey uintptr) (request, error) {
	return l.ptrStatus("ucp_put_nbx", ccall(l.fns[fnPutNbx], e, uintptr(src), uintptr(n), uintptr(raddr), rkey, uintptr(unsafe.Pointer(&noParam))))
}

func (l *lib) tagSend(e uintptr, src unsafe.Pointer, n int, tag uint64) (request, error) {
	return l.ptrStatus("ucp_tag_send_nbx", ccall(l.fns[fnTagSendNbx], e, uintptr(src), uintptr(n), uintptr(tag), uintptr(unsafe.Pointer(&noParam))))
}

func (l *lib) tagRecv(w uintptr, dst unsafe.Pointer, n int, tag, mask uint64) (request, error) {
	return l.ptrStatus("ucp_tag_recv_nbx", ccall(l.fns[fnTagRecvNbx], w, uintptr(dst), uintptr(n), uintptr(tag), uintptr(mask), uintptr(unsafe.Pointer(&noParam))))
}

func (l *lib) cancel(w uintptr, req request) { ccall(l.fns[fnRequestCancel], w, uintptr(req)) }
