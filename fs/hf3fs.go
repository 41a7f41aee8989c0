package fs

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/fireflyer-go/fireflyer/internal/hf3fs"
)

// HF3FSOpts configures the hf3fs backend, the native 3FS USRBIO protocol
// (deepseek-ai/3FS src/lib/api/UsrbIo.cc) spoken in pure Go. The zero value
// is right for a real mount; the function fields are the seams a test uses
// to run the backend against a daemon of its own, without FUSE.
type HF3FSOpts struct {
	// MountPoint is the 3FS mount point (the directory holding 3fs-virt).
	// "" finds it in /proc/self/mountinfo (fstype fuse.hf3fs, the deepest
	// mount holding the Client's root). Set, it also makes "auto" pick
	// hf3fs for roots under it.
	MountPoint string
	// CheckFile decides whether a file descriptor may be registered (the
	// reg_fd check). nil asks the file system: ioctl
	// HF3FS_IOC_GET_MAGIC_NUM must return HF3FS_SUPER_MAGIC 0x8f3f5fff.
	// Return a non-nil error to refuse.
	CheckFile func(fd int) error
	// ShmMode is the permission of the shared-memory files under /dev/shm
	// (buffers and rings). 0 means 0600; the C library uses 0666, which a
	// daemon running as another user needs.
	ShmMode os.FileMode
	// Registered, when non-nil, is called after each symlink under
	// <MountPoint>/3fs-virt/iovs is created, with the link's path; an
	// error undoes the registration. On a real mount the FUSE symlink call
	// itself is the daemon's answer, so this stays nil; a test daemon
	// that watches the directory uses it to answer synchronously.
	Registered func(link string) error
	// Ioctl, when non-nil, replaces ioctl(2) for the 3FS ioctls that carry
	// an argument struct (HF3FS_IOC_PUNCH_HOLE, HF3FS_IOC_HARDLINK): it
	// gets the descriptor, the request number and the struct's bytes as
	// src/lib/api/fuse.h lays them out, and returns the errno. A test
	// daemon without FUSE answers them here; on a real mount it stays nil.
	Ioctl func(fd int, req uint, arg []byte) error
}

// WithHF3FS configures the hf3fs backend (see HF3FSOpts). It does not by
// itself select hf3fs: use WithBackend("hf3fs"), or "auto" with the root
// on a 3FS mount.
func WithHF3FS(o HF3FSOpts) Option { return func(opt *options) { opt.hf3fs = o } }

// ErrNotHF3FS: the root or a file is not on a 3FS mount (no fuse.hf3fs
// mount holds it, the magic ioctl fails, or the file lies on another
// device than the mount). It matches syscall.EBADF, the errno
// hf3fs_reg_fd returns for the same condition.
var ErrNotHF3FS error = &sentinel{"fs: not on a 3FS mount", syscall.EBADF}

// errNotOnMount is the error for a root no 3FS mount holds.
func errNotOnMount(root string) error {
	return fmt.Errorf("%w: root %q is not on a 3FS mount (no fuse.hf3fs entry in /proc/self/mountinfo holds it; set HF3FSOpts.MountPoint)", ErrNotHF3FS, root)
}

// detectHF3FS returns the 3FS mount point that holds root, if any.
func detectHF3FS(root string, o HF3FSOpts) (string, bool) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", false
	}
	if o.MountPoint != "" {
		mp, err := filepath.Abs(o.MountPoint)
		if err != nil || !hf3fs.Under(abs, mp) {
			return "", false
		}
		return mp, true
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	defer f.Close()
	mp, ok, err := hf3fs.FindMount(f, abs)
	if err != nil {
		return "", false
	}
	return mp, ok
}
