//go:build linux

package fs

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/fireflyer-go/fireflyer/internal/hf3fs"
	"github.com/fireflyer-go/fireflyer/internal/mmap"
)

// localShmPath is where a shared Buffer of the mem, posix and uring
// backends lives: /dev/shm/fireflyer-iov-<key>, the key as a USRBIO iov
// key (uuid and .b<block size>), so the id and block size find it.
func localShmPath(s BufferSpec) string {
	return shmDir + "/fireflyer-iov-" + hf3fs.Key{ID: s.ID, BlockSize: int64(s.BlockSize)}.String()
}

// shmMode returns the permission of a new shared-memory file.
func shmMode(m os.FileMode) uint32 {
	if m == 0 {
		return 0o600
	}
	return uint32(m.Perm())
}

// createShmFile creates path (O_EXCL|O_NOFOLLOW) with mode (applied past
// the umask), fileLen bytes long (n when 0; at most n, in n's last page),
// maps n bytes of it shared and binds them to node when node >= 0. The
// file is removed again on failure.
func createShmFile(path string, n, fileLen int, mode uint32, node int) ([]byte, error) {
	if fileLen <= 0 || fileLen > n {
		fileLen = n
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return nil, &os.PathError{Op: "create", Path: path, Err: err}
	}
	defer unix.Close(fd)
	fail := func(op string, err error) ([]byte, error) {
		unix.Unlink(path)
		return nil, &os.PathError{Op: op, Path: path, Err: err}
	}
	if err := unix.Fchmod(fd, mode); err != nil { // the umask may have cut it
		return fail("chmod", err)
	}
	if err := unix.Ftruncate(fd, int64(fileLen)); err != nil {
		return fail("truncate", err)
	}
	mem, err := unix.Mmap(fd, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("mmap", err)
	}
	if node >= 0 {
		if err := mmap.Bind(mem, node); err != nil {
			unix.Munmap(mem)
			unix.Unlink(path)
			if errors.Is(err, mmap.ErrNoNode) {
				err = fmt.Errorf("%w: %v", ErrInvalid, err)
			}
			return nil, err
		}
	}
	return mem, nil
}

// mapShmFile maps all of an existing shared-memory file, which must be a
// regular file (opened O_NOFOLLOW) of at least one byte.
func mapShmFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size <= 0 || st.Size > 1<<46 {
		return nil, fmt.Errorf("%w: %s is not a shared-memory buffer file (%d bytes)", ErrInvalid, path, st.Size)
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: path, Err: err}
	}
	return mem, nil
}

// createLocalShm maps a shared Buffer of a local backend.
func createLocalShm(s BufferSpec) ([]byte, func() error, error) {
	path := localShmPath(s)
	mem, err := createShmFile(path, s.Size, s.Len, shmMode(s.Mode), s.Node)
	if err != nil {
		return nil, nil, err
	}
	return mem, func() error { return errors.Join(unix.Munmap(mem), unix.Unlink(path)) }, nil
}

// openLocalShm attaches a shared Buffer a local backend created.
func openLocalShm(s BufferSpec) ([]byte, func() error, error) {
	mem, err := mapShmFile(localShmPath(s))
	if err != nil {
		return nil, nil, err
	}
	return mem, func() error { return unix.Munmap(mem) }, nil
}

// PunchHole implements HolePuncher: fallocate PUNCH_HOLE|KEEP_SIZE.
func (o *osFile) PunchHole(off, n int64) error {
	for {
		err := unix.Fallocate(o.fdn, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "punchhole", Path: o.f.Name(), Err: err}
		}
		return nil
	}
}
