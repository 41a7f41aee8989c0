// Package abicheck reads the layout of the UCP structures and the values
// of the UCP constants that package ucx hard-codes from the installed
// <ucp/api/ucp.h>, for ucx's ABI test. Its code needs cgo, libucx-dev and
// the build tag ucxabi (`go test -tags ucxabi ./ep/ucx/`); without them
// the package is empty. The ucx package itself never uses cgo.
package abicheck
