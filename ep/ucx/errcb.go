package ucx

import "sync"

// UCX reports an endpoint's failure (UCP_ERR_HANDLING_MODE_PEER) through a
// C callback; it is the one callback this package installs, made once per
// process with purego. It runs inside ucp_worker_progress, on the thread
// that holds the transport's mutex, so it only records the failure: the
// operations on the endpoint fail by themselves, and Close then forces the
// endpoint closed, as UCX asks after such an error.

var (
	errTargetsMu sync.Mutex
	errTargets   = map[uintptr]*Transport{}
	errTargetID  uintptr
)

// registerErrTarget gives t an id for the callback's argument (id<<16 |
// rank).
func registerErrTarget(t *Transport) uintptr {
	errTargetsMu.Lock()
	defer errTargetsMu.Unlock()
	errTargetID++
	errTargets[errTargetID] = t
	return errTargetID
}

func unregisterErrTarget(id uintptr) {
	errTargetsMu.Lock()
	defer errTargetsMu.Unlock()
	delete(errTargets, id)
}

// epFailed is the body of the error callback: ucp_err_handler_cb_t(arg,
// ep, status).
func epFailed(arg, ep, status uintptr) {
	errTargetsMu.Lock()
	t := errTargets[arg>>16]
	errTargetsMu.Unlock()
	if r := int(arg & 0xffff); t != nil && r < len(t.epFailed) {
		t.epFailed[r].Store(true)
	}
}
