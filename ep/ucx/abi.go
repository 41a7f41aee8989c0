package ucx

import "unsafe"

// The C structures and constants of UCP that this package passes, laid out
// as in UCX 1.13's <ucp/api/ucp.h> on 64-bit Linux (amd64 and arm64 share
// the layout). Every parameter structure starts with a field_mask that
// names the fields the library may read, so a newer library that grew the
// structure still reads only what is set here; the sizes are the 1.13 ones
// (zero tails for fields this package never sets). abi_test.go (build tag
// ucxabi, cgo and libucx-dev) checks every size and offset against the
// installed headers.

// ucpParams is ucp_params_t (80 bytes): field_mask, features, …, name.
type ucpParams struct {
	fieldMask uint64
	features  uint64
	_         [56]byte // request_size … estimated_num_ppn
	name      uintptr
}

// ucpWorkerParams is ucp_worker_params_t (200 bytes): field_mask,
// thread_mode, ….
type ucpWorkerParams struct {
	fieldMask  uint64
	threadMode int32
	_          [188]byte
}

// ucpEpParams is ucp_ep_params_t (104 bytes): field_mask, address,
// err_mode, err_handler {cb, arg}, ….
type ucpEpParams struct {
	fieldMask uint64
	address   uintptr
	errMode   int32
	_         [4]byte
	errCB     uintptr
	errArg    uintptr
	_         [64]byte
}

// ucpMemMapParams is ucp_mem_map_params_t (40 bytes): field_mask, address,
// length, flags, ….
type ucpMemMapParams struct {
	fieldMask uint64
	address   uintptr
	length    uint64
	flags     uint32
	_         [12]byte
}

// ucpRequestParam is ucp_request_param_t (72 bytes): op_attr_mask, flags,
// then the request, callback, user data, datatype and the rest, never set
// here: every operation is polled, none has a callback.
type ucpRequestParam struct {
	opAttrMask uint32
	flags      uint32
	_          [64]byte
}

// ucpMemAttr is ucp_mem_attr_t (32 bytes): field_mask, address, length,
// mem_type.
type ucpMemAttr struct {
	fieldMask uint64
	address   uintptr
	length    uint64
	memType   int32
	_         [4]byte
}

// Sizes of the structures above in UCX 1.13 (checked by abi_test.go).
const (
	sizeofParams       = 80
	sizeofWorkerParams = 200
	sizeofEpParams     = 104
	sizeofMemMapParams = 40
	sizeofRequestParam = 72
	sizeofMemAttr      = 32
	sizeofStatus       = 1 // ucs_status_t is a packed enum
)

// Constants of ucp.h / ucs/type/status.h (UCX 1.13).
const (
	ucpAPIMajor = 1
	ucpAPIMinor = 13

	ucpParamFieldFeatures = 1 << 0 // UCP_PARAM_FIELD_FEATURES
	ucpParamFieldName     = 1 << 8 // UCP_PARAM_FIELD_NAME
	ucpFeatureTag         = 1 << 0 // UCP_FEATURE_TAG
	ucpFeatureRMA         = 1 << 1 // UCP_FEATURE_RMA

	ucpWorkerParamFieldThreadMode = 1 << 0 // UCP_WORKER_PARAM_FIELD_THREAD_MODE
	ucsThreadModeSerialized       = 1      // UCS_THREAD_MODE_SERIALIZED

	ucpEpParamFieldRemoteAddress   = 1 << 0 // UCP_EP_PARAM_FIELD_REMOTE_ADDRESS
	ucpEpParamFieldErrHandlingMode = 1 << 1 // UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE
	ucpErrHandlingModePeer         = 1      // UCP_ERR_HANDLING_MODE_PEER
	ucpEpParamFieldErrHandler      = 1 << 2 // UCP_EP_PARAM_FIELD_ERR_HANDLER
	ucpMemMapParamFieldAddress     = 1 << 0 // UCP_MEM_MAP_PARAM_FIELD_ADDRESS
	ucpMemMapParamFieldLength      = 1 << 1 // UCP_MEM_MAP_PARAM_FIELD_LENGTH
	ucpMemMapParamFieldFlags       = 1 << 2 // UCP_MEM_MAP_PARAM_FIELD_FLAGS
	ucpMemMapAllocate              = 1 << 1 // UCP_MEM_MAP_ALLOCATE
	ucpMemAttrFieldAddress         = 1 << 0 // UCP_MEM_ATTR_FIELD_ADDRESS
	ucpMemAttrFieldLength          = 1 << 1 // UCP_MEM_ATTR_FIELD_LENGTH
	ucpOpAttrFieldFlags            = 1 << 4 // UCP_OP_ATTR_FIELD_FLAGS
	ucpEpCloseFlagForce            = 1 << 0 // UCP_EP_CLOSE_FLAG_FORCE

	ucsOK         = 0    // UCS_OK
	ucsInProgress = 1    // UCS_INPROGRESS
	ucsErrLast    = -100 // UCS_ERR_LAST: status pointers at or above (uintptr)-100 are errors
)

// Compile-time checks that the Go structures have the 1.13 sizes (an index
// other than 0 does not compile).
var _ = [1]struct{}{}[unsafe.Sizeof(ucpParams{})-sizeofParams]
var _ = [1]struct{}{}[unsafe.Sizeof(ucpWorkerParams{})-sizeofWorkerParams]
var _ = [1]struct{}{}[unsafe.Sizeof(ucpEpParams{})-sizeofEpParams]
var _ = [1]struct{}{}[unsafe.Sizeof(ucpMemMapParams{})-sizeofMemMapParams]
var _ = [1]struct{}{}[unsafe.Sizeof(ucpRequestParam{})-sizeofRequestParam]
var _ = [1]struct{}{}[unsafe.Sizeof(ucpMemAttr{})-sizeofMemAttr]
var _ = [1]struct{}{}[unsafe.Sizeof(int8(0))-sizeofStatus]
