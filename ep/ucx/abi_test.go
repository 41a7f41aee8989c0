//go:build cgo && ucxabi

package ucx

import (
	"testing"
	"unsafe"

	"github.com/fireflyer-go/fireflyer/ep/ucx/internal/abicheck"
)

// TestABI checks every structure size, field offset and constant that
// abi.go hard-codes against the installed UCX headers (go test -tags
// ucxabi, with cgo and libucx-dev).
func TestABI(t *testing.T) {
	var p ucpParams
	var w ucpWorkerParams
	var e ucpEpParams
	var m ucpMemMapParams
	var r ucpRequestParam
	var a ucpMemAttr
	fl := func(off, size uintptr) abicheck.Field { return abicheck.Field{Off: off, Size: size} }
	mine := map[string]abicheck.Field{
		"ucp_params_t":                     fl(0, unsafe.Sizeof(p)),
		"ucp_params_t.field_mask":          fl(unsafe.Offsetof(p.fieldMask), unsafe.Sizeof(p.fieldMask)),
		"ucp_params_t.features":            fl(unsafe.Offsetof(p.features), unsafe.Sizeof(p.features)),
		"ucp_params_t.name":                fl(unsafe.Offsetof(p.name), unsafe.Sizeof(p.name)),
		"ucp_worker_params_t":              fl(0, unsafe.Sizeof(w)),
		"ucp_worker_params_t.field_mask":   fl(unsafe.Offsetof(w.fieldMask), unsafe.Sizeof(w.fieldMask)),
		"ucp_worker_params_t.thread_mode":  fl(unsafe.Offsetof(w.threadMode), unsafe.Sizeof(w.threadMode)),
		"ucp_ep_params_t":                  fl(0, unsafe.Sizeof(e)),
		"ucp_ep_params_t.field_mask":       fl(unsafe.Offsetof(e.fieldMask), unsafe.Sizeof(e.fieldMask)),
		"ucp_ep_params_t.address":          fl(unsafe.Offsetof(e.address), unsafe.Sizeof(e.address)),
		"ucp_ep_params_t.err_mode":         fl(unsafe.Offsetof(e.errMode), unsafe.Sizeof(e.errMode)),
		"ucp_ep_params_t.err_handler.cb":   fl(unsafe.Offsetof(e.errCB), unsafe.Sizeof(e.errCB)),
		"ucp_ep_params_t.err_handler.arg":  fl(unsafe.Offsetof(e.errArg), unsafe.Sizeof(e.errArg)),
		"ucp_mem_map_params_t":             fl(0, unsafe.Sizeof(m)),
		"ucp_mem_map_params_t.field_mask":  fl(unsafe.Offsetof(m.fieldMask), unsafe.Sizeof(m.fieldMask)),
		"ucp_mem_map_params_t.address":     fl(unsafe.Offsetof(m.address), unsafe.Sizeof(m.address)),
		"ucp_mem_map_params_t.length":      fl(unsafe.Offsetof(m.length), unsafe.Sizeof(m.length)),
		"ucp_mem_map_params_t.flags":       fl(unsafe.Offsetof(m.flags), unsafe.Sizeof(m.flags)),
		"ucp_request_param_t":              fl(0, unsafe.Sizeof(r)),
		"ucp_request_param_t.op_attr_mask": fl(unsafe.Offsetof(r.opAttrMask), unsafe.Sizeof(r.opAttrMask)),
		"ucp_request_param_t.flags":        fl(unsafe.Offsetof(r.flags), unsafe.Sizeof(r.flags)),
		"ucp_mem_attr_t":                   fl(0, unsafe.Sizeof(a)),
		"ucp_mem_attr_t.field_mask":        fl(unsafe.Offsetof(a.fieldMask), unsafe.Sizeof(a.fieldMask)),
		"ucp_mem_attr_t.address":           fl(unsafe.Offsetof(a.address), unsafe.Sizeof(a.address)),
		"ucp_mem_attr_t.length":            fl(unsafe.Offsetof(a.length), unsafe.Sizeof(a.length)),
		"ucs_status_t":                     fl(0, sizeofStatus),
	}
	c := abicheck.Layout()
	for name, f := range mine {
		if c[name] != f {
			t.Errorf("%s: here offset %d size %d, the headers say offset %d size %d", name, f.Off, f.Size, c[name].Off, c[name].Size)
		}
	}
	for _, s := range []struct {
		name string
		size uintptr
	}{{"ucp_params_t", sizeofParams}, {"ucp_worker_params_t", sizeofWorkerParams}, {"ucp_ep_params_t", sizeofEpParams},
		{"ucp_mem_map_params_t", sizeofMemMapParams}, {"ucp_request_param_t", sizeofRequestParam}, {"ucp_mem_attr_t", sizeofMemAttr}} {
		if c[s.name].Size != s.size {
			t.Errorf("sizeof %s: constant %d, headers %d", s.name, s.size, c[s.name].Size)
		}
	}
	consts := map[string]int64{
		"UCP_API_MAJOR": ucpAPIMajor, "UCP_API_MINOR": ucpAPIMinor,
		"UCP_PARAM_FIELD_FEATURES": ucpParamFieldFeatures, "UCP_PARAM_FIELD_NAME": ucpParamFieldName,
		"UCP_FEATURE_TAG": ucpFeatureTag, "UCP_FEATURE_RMA": ucpFeatureRMA,
		"UCP_WORKER_PARAM_FIELD_THREAD_MODE": ucpWorkerParamFieldThreadMode, "UCS_THREAD_MODE_SERIALIZED": ucsThreadModeSerialized,
		"UCP_EP_PARAM_FIELD_REMOTE_ADDRESS": ucpEpParamFieldRemoteAddress, "UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE": ucpEpParamFieldErrHandlingMode,
		"UCP_ERR_HANDLING_MODE_PEER":      ucpErrHandlingModePeer,
		"UCP_MEM_MAP_PARAM_FIELD_ADDRESS": ucpMemMapParamFieldAddress, "UCP_MEM_MAP_PARAM_FIELD_LENGTH": ucpMemMapParamFieldLength,
		"UCP_MEM_MAP_PARAM_FIELD_FLAGS": ucpMemMapParamFieldFlags, "UCP_MEM_MAP_ALLOCATE": ucpMemMapAllocate,
		"UCP_MEM_ATTR_FIELD_ADDRESS": ucpMemAttrFieldAddress, "UCP_MEM_ATTR_FIELD_LENGTH": ucpMemAttrFieldLength,
		"UCP_OP_ATTR_FIELD_FLAGS": ucpOpAttrFieldFlags, "UCP_EP_CLOSE_FLAG_FORCE": ucpEpCloseFlagForce,
		"UCS_OK": ucsOK, "UCS_INPROGRESS": ucsInProgress, "UCS_ERR_LAST": ucsErrLast,
	}
	cc := abicheck.Constants()
	for name, v := range consts {
		if got, ok := cc[name]; !ok || got != v {
			t.Errorf("%s = %d here, %d (present %v) in the headers", name, v, got, ok)
		}
	}
}
