package ucx

import (
	"fmt"
	"os"
	"strings"
	"sync"
)

// Environment variables naming the UCX libraries explicitly; when set, the
// path is the only one tried (otherwise the sonames, through the loader's
// search path).
const (
	EnvLibUCP = "FIREFLYER_LIBUCP" // path of libucp.so.0
	EnvLibUCS = "FIREFLYER_LIBUCS" // path of libucs.so.0
)

// InstallHint is how to install the UCX run time on Debian and Ubuntu; it
// ends every ErrUnavailable message about a missing library.
const InstallHint = "install UCX ≥ 1.13, e.g. `apt-get install libucx0` (ucx-utils adds ucx_info and ucx_perftest)"

// function indices into lib.fns
const (
	fnStatusString = iota
	fnGetVersion
	fnGetVersionString
	fnConfigRead
	fnConfigModify
	fnConfigRelease
	fnInitVersion
	fnCleanup
	fnContextPrintInfo
	fnWorkerCreate
	fnWorkerDestroy
	fnWorkerGetAddress
	fnWorkerReleaseAddress
	fnWorkerProgress
	fnEpCreate
	fnEpCloseNbx
	fnEpFlushNbx
	fnMemMap
	fnMemUnmap
	fnMemQuery
	fnRkeyPack
	fnRkeyBufferRelease
	fnEpRkeyUnpack
	fnRkeyDestroy
	fnRkeyPtr
	fnPutNbx
	fnTagSendNbx
	fnTagRecvNbx
	fnRequestCheckStatus
	fnRequestCancel
	fnRequestFree
	fnSetenv
	fnOpenMemstream
	fnFclose
	fnFree
	numFns
)

// symbols lists, per function index, the library ("ucs", "ucp" or "c")
// and the symbol.
var symbols = [numFns]struct{ lib, name string }{
	fnStatusString:         {"ucs", "ucs_status_string"},
	fnGetVersion:           {"ucp", "ucp_get_version"},
	fnGetVersionString:     {"ucp", "ucp_get_version_string"},
	fnConfigRead:           {"ucp", "ucp_config_read"},
	fnConfigModify:         {"ucp", "ucp_config_modify"},
	fnConfigRelease:        {"ucp", "ucp_config_release"},
	fnInitVersion:          {"ucp", "ucp_init_version"},
	fnCleanup:              {"ucp", "ucp_cleanup"},
	fnContextPrintInfo:     {"ucp", "ucp_context_print_info"},
	fnWorkerCreate:         {"ucp", "ucp_worker_create"},
	fnWorkerDestroy:        {"ucp", "ucp_worker_destroy"},
	fnWorkerGetAddress:     {"ucp", "ucp_worker_get_address"},
	fnWorkerReleaseAddress: {"ucp", "ucp_worker_release_address"},
	fnWorkerProgress:       {"ucp", "ucp_worker_progress"},
	fnEpCreate:             {"ucp", "ucp_ep_create"},
	fnEpCloseNbx:           {"ucp", "ucp_ep_close_nbx"},
	fnEpFlushNbx:           {"ucp", "ucp_ep_flush_nbx"},
	fnMemMap:               {"ucp", "ucp_mem_map"},
	fnMemUnmap:             {"ucp", "ucp_mem_unmap"},
	fnMemQuery:             {"ucp", "ucp_mem_query"},
	fnRkeyPack:             {"ucp", "ucp_rkey_pack"},
	fnRkeyBufferRelease:    {"ucp", "ucp_rkey_buffer_release"},
	fnEpRkeyUnpack:         {"ucp", "ucp_ep_rkey_unpack"},
	fnRkeyDestroy:          {"ucp", "ucp_rkey_destroy"},
	fnRkeyPtr:              {"ucp", "ucp_rkey_ptr"},
	fnPutNbx:               {"ucp", "ucp_put_nbx"},
	fnTagSendNbx:           {"ucp", "ucp_tag_send_nbx"},
	fnTagRecvNbx:           {"ucp", "ucp_tag_recv_nbx"},
	fnRequestCheckStatus:   {"ucp", "ucp_request_check_status"},
	fnRequestCancel:        {"ucp", "ucp_request_cancel"},
	fnRequestFree:          {"ucp", "ucp_request_free"},
	fnSetenv:               {"c", "setenv"},
	fnOpenMemstream:        {"c", "open_memstream"},
	fnFclose:               {"c", "fclose"},
	fnFree:                 {"c", "free"},
}

// libNames lists the file names tried, in order, for one library.
func libNames(which string) []string {
	var env, names = "", []string(nil)
	switch which {
	case "ucp":
		env, names = EnvLibUCP, []string{"libucp.so.0", "libucp.so"}
	case "ucs":
		env, names = EnvLibUCS, []string{"libucs.so.0", "libucs.so"}
	case "c":
		names = []string{"libc.so.6"}
	}
	if p := os.Getenv(env); env != "" && p != "" {
		names = []string{p} // an explicit path is the only one tried
	}
	return names
}

// lib is the loaded UCX run time.
type lib struct {
	fns     [numFns]uintptr
	version string // "1.13.1"
	major   uint32
	minor   uint32
}

var (
	loadOnce sync.Once
	loaded   *lib
	loadErr  error
)

// load opens libucs, libucp and libc once per process and resolves every
// function. Errors wrap ErrUnavailable and name the library and how to
// install it.
func load() (*lib, error) {
	loadOnce.Do(func() { loaded, loadErr = loadLib() })
	return loaded, loadErr
}

// openFirst opens the first name that loads; when none does the error
// wraps ErrUnavailable, lists each name with the loader's reason and ends
// with InstallHint.
func openFirst(which string) (uintptr, string, error) {
	var why []string
	names := libNames(which)
	for _, n := range names {
		h, err := dlopen(n)
		if err == nil {
			return h, n, nil
		}
		msg := err.Error()
		if !strings.Contains(msg, n) {
			msg = n + ": " + msg
		}
		why = append(why, msg)
	}
	return 0, "", fmt.Errorf("%w: cannot load %s (%s); %s", ErrUnavailable, names[len(names)-1], strings.Join(why, "; "), InstallHint)
}
