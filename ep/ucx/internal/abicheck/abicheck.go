//go:build cgo && ucxabi

package abicheck

/*
#include <stddef.h>
#include <ucp/api/ucp.h>
*/
import "C"

import "unsafe"

// Field is a C field's offset and size in bytes.
type Field struct{ Off, Size uintptr }

// Layout maps "struct" to its size and "struct.field" to Field{offset, size}.
func Layout() map[string]Field {
	var p C.ucp_params_t
	var w C.ucp_worker_params_t
	var e C.ucp_ep_params_t
	var m C.ucp_mem_map_params_t
	var r C.ucp_request_param_t
	var a C.ucp_mem_attr_t
	var st C.ucs_status_t
	return map[string]Field{
		"ucp_params_t":                     {0, unsafe.Sizeof(p)},
		"ucp_params_t.field_mask":          {unsafe.Offsetof(p.field_mask), unsafe.Sizeof(p.field_mask)},
		"ucp_params_t.features":            {unsafe.Offsetof(p.features), unsafe.Sizeof(p.features)},
		"ucp_params_t.name":                {unsafe.Offsetof(p.name), unsafe.Sizeof(p.name)},
		"ucp_worker_params_t":              {0, unsafe.Sizeof(w)},
		"ucp_worker_params_t.field_mask":   {unsafe.Offsetof(w.field_mask), unsafe.Sizeof(w.field_mask)},
		"ucp_worker_params_t.thread_mode":  {unsafe.Offsetof(w.thread_mode), unsafe.Sizeof(w.thread_mode)},
		"ucp_ep_params_t":                  {0, unsafe.Sizeof(e)},
		"ucp_ep_params_t.field_mask":       {unsafe.Offsetof(e.field_mask), unsafe.Sizeof(e.field_mask)},
		"ucp_ep_params_t.address":          {unsafe.Offsetof(e.address), unsafe.Sizeof(e.address)},
		"ucp_ep_params_t.err_mode":         {unsafe.Offsetof(e.err_mode), unsafe.Sizeof(e.err_mode)},
		"ucp_ep_params_t.err_handler.cb":   {unsafe.Offsetof(e.err_handler) + unsafe.Offsetof(e.err_handler.cb), unsafe.Sizeof(e.err_handler.cb)},
		"ucp_ep_params_t.err_handler.arg":  {unsafe.Offsetof(e.err_handler) + unsafe.Offsetof(e.err_handler.arg), unsafe.Sizeof(e.err_handler.arg)},
		"ucp_mem_map_params_t":             {0, unsafe.Sizeof(m)},
		"ucp_mem_map_params_t.field_mask":  {unsafe.Offsetof(m.field_mask), unsafe.Sizeof(m.field_mask)},
		"ucp_mem_map_params_t.address":     {unsafe.Offsetof(m.address), unsafe.Sizeof(m.address)},
		"ucp_mem_map_params_t.length":      {unsafe.Offsetof(m.length), unsafe.Sizeof(m.length)},
		"ucp_mem_map_params_t.flags":       {unsafe.Offsetof(m.flags), unsafe.Sizeof(m.flags)},
		"ucp_request_param_t":              {0, unsafe.Sizeof(r)},
		"ucp_request_param_t.op_attr_mask": {unsafe.Offsetof(r.op_attr_mask), unsafe.Sizeof(r.op_attr_mask)},
		"ucp_request_param_t.flags":        {unsafe.Offsetof(r.flags), unsafe.Sizeof(r.flags)},
		"ucp_mem_attr_t":                   {0, unsafe.Sizeof(a)},
		"ucp_mem_attr_t.field_mask":        {unsafe.Offsetof(a.field_mask), unsafe.Sizeof(a.field_mask)},
		"ucp_mem_attr_t.address":           {unsafe.Offsetof(a.address), unsafe.Sizeof(a.address)},
		"ucp_mem_attr_t.length":            {unsafe.Offsetof(a.length), unsafe.Sizeof(a.length)},
		"ucs_status_t":                     {0, unsafe.Sizeof(st)},
	}
}

// Constants returns the values of the UCP/UCS constants ucx uses, by C name.
func Constants() map[string]int64 {
	return map[string]int64{
		"UCP_API_MAJOR":                        C.UCP_API_MAJOR,
		"UCP_API_MINOR":                        C.UCP_API_MINOR,
		"UCP_PARAM_FIELD_FEATURES":             C.UCP_PARAM_FIELD_FEATURES,
		"UCP_PARAM_FIELD_NAME":                 C.UCP_PARAM_FIELD_NAME,
		"UCP_FEATURE_TAG":                      C.UCP_FEATURE_TAG,
		"UCP_FEATURE_RMA":                      C.UCP_FEATURE_RMA,
		"UCP_WORKER_PARAM_FIELD_THREAD_MODE":   C.UCP_WORKER_PARAM_FIELD_THREAD_MODE,
		"UCS_THREAD_MODE_SERIALIZED":           C.UCS_THREAD_MODE_SERIALIZED,
		"UCP_EP_PARAM_FIELD_REMOTE_ADDRESS":    C.UCP_EP_PARAM_FIELD_REMOTE_ADDRESS,
		"UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE": C.UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE,
		"UCP_ERR_HANDLING_MODE_PEER":           C.UCP_ERR_HANDLING_MODE_PEER,
		"UCP_EP_PARAM_FIELD_ERR_HANDLER":       C.UCP_EP_PARAM_FIELD_ERR_HANDLER,
		"UCP_MEM_MAP_PARAM_FIELD_ADDRESS":      C.UCP_MEM_MAP_PARAM_FIELD_ADDRESS,
		"UCP_MEM_MAP_PARAM_FIELD_LENGTH":       C.UCP_MEM_MAP_PARAM_FIELD_LENGTH,
		"UCP_MEM_MAP_PARAM_FIELD_FLAGS":        C.UCP_MEM_MAP_PARAM_FIELD_FLAGS,
		"UCP_MEM_MAP_ALLOCATE":                 C.UCP_MEM_MAP_ALLOCATE,
		"UCP_MEM_ATTR_FIELD_ADDRESS":           C.UCP_MEM_ATTR_FIELD_ADDRESS,
		"UCP_MEM_ATTR_FIELD_LENGTH":            C.UCP_MEM_ATTR_FIELD_LENGTH,
		"UCP_OP_ATTR_FIELD_FLAGS":              C.UCP_OP_ATTR_FIELD_FLAGS,
		"UCP_EP_CLOSE_FLAG_FORCE":              C.UCP_EP_CLOSE_FLAG_FORCE,
		"UCS_OK":                               C.UCS_OK,
		"UCS_INPROGRESS":                       C.UCS_INPROGRESS,
		"UCS_ERR_LAST":                         C.UCS_ERR_LAST,
	}
}
