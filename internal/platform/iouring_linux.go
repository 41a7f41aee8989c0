package platform

import (
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// IOURing reports whether this process can create an io_uring instance: it
// calls io_uring_setup(2) with one entry and closes the ring. A nil error
// means io_uring works; otherwise the error says why not (kernel without
// io_uring, disabled by the kernel.io_uring_disabled sysctl, refused by a
// seccomp filter).
func IOURing() error {
	var params [120]byte // struct io_uring_params, zeroed
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	if errno != 0 {
		reason := errno.Error()
		switch errno {
		case unix.ENOSYS:
			reason = "the kernel has no io_uring (ENOSYS)"
		case unix.EPERM:
			reason = "io_uring is refused (EPERM)"
			if b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled"); err == nil {
				if v := strings.TrimSpace(string(b)); v != "0" {
					reason += "; kernel.io_uring_disabled=" + v
				}
			}
		}
		return fmt.Errorf("io_uring_setup: %s", reason)
	}
	unix.Close(int(fd))
	return nil
}
