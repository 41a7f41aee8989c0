//go:build linux

package fs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fireflyer-go/fireflyer/internal/hf3fs"
)

// The 3FS ioctls with an argument struct (src/lib/api/fuse.h): _IOW('h',
// nr, struct), and the struct sizes on 64-bit Linux.
const (
	hf3fsPunchHoleMax   = 1000                       // HF3FS_IOCTL_PUNCH_HOLE_MAX
	hf3fsHardlinkArgLen = 8 + 255 + 1                // {ino_t ino; char str[NAME_MAX]}, padded to 8
	hf3fsPunchArgLen    = 16 + 2*8*hf3fsPunchHoleMax // {int n; size_t flags; size_t start[1000], end[1000]}
	hf3fsIocHardlink    = 1<<30 | hf3fsHardlinkArgLen<<16 | 'h'<<8 | 12
	hf3fsIocPunchHole   = 1<<30 | hf3fsPunchArgLen<<16 | 'h'<<8 | 13
	// daemonCheck is how often a waiting ring checks that the daemon is
	// still there.
	daemonCheck = 50 * time.Millisecond
)

// HF3FSIoctlHardlink and HF3FSIoctlPunchHole are the request numbers
// HF3FSOpts.Ioctl receives (HF3FS_IOC_HARDLINK, HF3FS_IOC_PUNCH_HOLE).
const (
	HF3FSIoctlHardlink  uint = hf3fsIocHardlink
	HF3FSIoctlPunchHole uint = hf3fsIocPunchHole
)

// sysIoctl is ioctl(2) with a pointer argument.
func sysIoctl(fd int, req uint, arg []byte) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&arg[0])))
	if e != 0 {
		return e
	}
	return nil
}

// PunchHole implements HolePuncher with HF3FS_IOC_PUNCH_HOLE, one range
// [off, off+n) (hf3fs_punchhole with n = 1, flags 0).
func (f *hf3fsFile) PunchHole(off, n int64) error {
	arg := make([]byte, hf3fsPunchArgLen)
	binary.NativeEndian.PutUint32(arg[0:], 1)
	binary.NativeEndian.PutUint64(arg[16:], uint64(off))
	binary.NativeEndian.PutUint64(arg[16+8*hf3fsPunchHoleMax:], uint64(off+n))
	if err := f.ioctl(f.fdn, hf3fsIocPunchHole, arg); err != nil {
		return &os.PathError{Op: "punchhole", Path: f.f.Name(), Err: err}
	}
	return nil
}

// Hardlink implements Hardlinker as hf3fs_hardlink: open oldname, stat
// newname's directory for its inode id, HF3FS_IOC_HARDLINK on oldname's
// descriptor with {directory inode, base name}.
func (b *hf3fsBackend) Hardlink(oldname, newname string) error {
	fail := func(err error) error { return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: err} }
	base := filepath.Base(newname)
	if base == "/" || base == "." || base == ".." || len(base) >= 255 || strings.IndexByte(newname, 0) >= 0 {
		return fail(syscall.EINVAL)
	}
	fd, err := unix.Open(oldname, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Stat(filepath.Dir(newname), &st); err != nil {
		return fail(err)
	}
	if st.Dev != b.dev {
		return fail(syscall.EXDEV)
	}
	arg := make([]byte, hf3fsHardlinkArgLen)
	binary.NativeEndian.PutUint64(arg, st.Ino)
	copy(arg[8:], base)
	if err := b.ioctl(fd, hf3fsIocHardlink, arg); err != nil {
		return fail(err)
	}
	return nil
}

// WrapBuffer implements BufferWrapper (hf3fs_iovwrap with the symlink
// the Python binding makes): mem must be the start of a MAP_SHARED
// mapping of a /dev/shm file at offset 0, which is registered under
// s.ID. release removes the registration only.
func (b *hf3fsBackend) WrapBuffer(mem []byte, s BufferSpec) (func() error, error) {
	path, err := shmBacking(mem)
	if err != nil {
		return nil, err
	}
	key := hf3fs.Key{ID: s.ID, BlockSize: int64(s.BlockSize)}
	if err := b.link(path, key); err != nil {
		return nil, err
	}
	name := key.String()
	return func() error { return b.unlink(name) }, nil
}

// shmBacking finds, in /proc/self/maps, the /dev/shm file whose shared
// mapping starts at mem's address with file offset 0 and is at least
// len(mem) bytes long.
func shmBacking(mem []byte) (string, error) {
	addr := uint64(uintptrOf(mem))
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return "", fmt.Errorf("%w: read /proc/self/maps: %v", ErrUnsupported, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || addr < start || addr >= end {
			continue
		}
		path := ""
		if len(fields) >= 6 {
			path = strings.Join(fields[5:], " ")
		}
		off, _ := strconv.ParseUint(fields[2], 16, 64)
		ino, _ := strconv.ParseUint(fields[4], 10, 64)
		switch {
		case len(fields[1]) < 4 || fields[1][3] != 's':
			return "", fmt.Errorf("%w: hf3fs WrapBuffer: memory at %#x is not a MAP_SHARED mapping (the daemon maps a /dev/shm file)", ErrInvalid, addr)
		case filepath.Dir(path) != shmDir || strings.HasSuffix(path, " (deleted)"):
			return "", fmt.Errorf("%w: hf3fs WrapBuffer: memory at %#x maps %q, not a file under %s", ErrInvalid, addr, path, shmDir)
		case start != addr || off != 0:
			return "", fmt.Errorf("%w: hf3fs WrapBuffer: memory at %#x does not start the mapping of %s at offset 0", ErrInvalid, addr, path)
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return "", &os.PathError{Op: "stat", Path: path, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Ino != ino || st.Size < int64(len(mem)) {
			return "", fmt.Errorf("%w: hf3fs WrapBuffer: %s is not the %d-byte regular file mapped at %#x", ErrInvalid, path, len(mem), addr)
		}
		return path, nil
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%w: hf3fs WrapBuffer: memory at %#x is not mapped", ErrInvalid, addr)
}

// OpenBuffer implements BufferOpener (hf3fs_iovopen): the target of the
// buffer's key under 3fs-virt/iovs, which must be a file directly under
// /dev/shm, mapped shared.
func (b *hf3fsBackend) OpenBuffer(s BufferSpec) ([]byte, func() error, error) {
	name := hf3fs.Key{ID: s.ID, BlockSize: int64(s.BlockSize)}.String()
	var target string
	err := b.virt.do(func(dirfd int) error {
		buf := make([]byte, 4096)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return err
		}
		target = string(buf[:n])
		return nil
	})
	if err != nil {
		return nil, nil, &os.PathError{Op: "readlink", Path: filepath.Join(b.iovs, name), Err: err}
	}
	if filepath.Clean(target) != target || filepath.Dir(target) != shmDir {
		return nil, nil, fmt.Errorf("%w: %s points to %q, not a file under %s", ErrInvalid, name, target, shmDir)
	}
	mem, err := mapShmFile(target)
	if err != nil {
		return nil, nil, err
	}
	return mem, func() error { return unix.Munmap(mem) }, nil
}

// errDaemonGone is the error of a submission after the daemon died.
func (b *hf3fsBackend) errDaemonGone() error {
	return fmt.Errorf("fs: hf3fs: the 3FS daemon of %s is gone: %w", b.mp, syscall.ENOTCONN)
}

// alive reports whether the daemon still serves the mount as far as is
// known, and at most every daemonCheck starts a probe on the virt thread:
// the daemon's submit-ios link must still be there (a dead FUSE daemon's
// mount answers ENOTCONN instead). The probe runs in the background so
// that a hung daemon, whose mount blocks instead of answering, cannot
// hang a Wait or Close bounded by a context or RingOpts.Timeout.
func (b *hf3fsBackend) alive() bool {
	if b.dead.Load() {
		return false
	}
	b.checkMu.Lock()
	defer b.checkMu.Unlock()
	if b.probing || time.Since(b.lastCheck) < daemonCheck {
		return true
	}
	b.probing = true
	b.probes.Add(1)
	go func() {
		defer b.probes.Done()
		err := b.virt.do(func(dirfd int) error {
			var st unix.Stat_t
			return unix.Fstatat(dirfd, "submit-ios", &st, unix.AT_SYMLINK_NOFOLLOW)
		})
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ECONNABORTED) {
			b.dead.Store(true)
		}
		b.checkMu.Lock()
		b.probing = false
		b.lastCheck = time.Now()
		b.checkMu.Unlock()
	}()
	return true
}
