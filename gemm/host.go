package gemm

import (
	"errors"
	"fmt"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// notHost reports storage a host backend cannot address: the error wraps
// both ErrUnsupported and tensor.ErrNotHost.
func notHost(backend, arg string, err error) error {
	return fmt.Errorf("gemm: %s: %s backend computes on the host: %w (%w)", arg, backend, err, ErrUnsupported)
}

// HostFP8 resolves the FP8 operands and output of a validated call to host
// slices, once per call, for backends that compute on the CPU (gemm/ref,
// gemm/cpu). backend names the caller for the error. Errors: one wrapping
// tensor.ErrNotHost and ErrUnsupported, naming the argument, when some
// storage is not host memory; one wrapping ErrShape for a nil argument.
func HostFP8(backend string, a, b *tensor.FP8Matrix, d *Out) (ah, bh tensor.FP8Host, dh OutHost, err error) {
	return hostOperands(backend, a, b, d)
}

// HostBF16 is HostFP8 for the BF16 GEMM's operands.
func HostBF16(backend string, a, b *BF16Matrix, d *Out) (ah, bh BF16Host, dh OutHost, err error) {
	return hostOperands(backend, a, b, d)
}

// hostOperands resolves operands a and b of either dtype and output d to
// host slices, naming the first argument whose storage is not host memory.
func hostOperands[H any, M interface{ Host() (H, error) }](backend string, a, b M, d *Out) (ah, bh H, dh OutHost, err error) {
	if ah, err = a.Host(); err != nil {
		return ah, bh, dh, hostErr(backend, "a", err)
	}
	if bh, err = b.Host(); err != nil {
		return ah, bh, dh, hostErr(backend, "b", err)
	}
	if dh, err = d.Host(); err != nil {
		return ah, bh, dh, hostErr(backend, "d", err)
	}
	return ah, bh, dh, nil
}

// hostErr names arg in a Host error: storage the backend cannot address
// (notHost), else a nil argument (ErrShape).
func hostErr(backend, arg string, err error) error {
	if errors.Is(err, tensor.ErrNotHost) {
		return notHost(backend, arg, err)
	}
	var ae *ArgError
	if errors.As(err, &ae) {
		return &ArgError{Arg: arg, Err: ae.Err, Msg: ae.Msg}
	}
	return fmt.Errorf("gemm: %s: %w (%w)", arg, err, ErrShape)
}
