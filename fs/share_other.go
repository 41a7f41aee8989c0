//go:build !linux

package fs

import (
	"fmt"
	"os"
)

var errNoShm = fmt.Errorf("%w: shared buffers need Linux (/dev/shm)", ErrUnsupported)

func createLocalShm(s BufferSpec) ([]byte, func() error, error) { return nil, nil, errNoShm }

func openLocalShm(s BufferSpec) ([]byte, func() error, error) { return nil, nil, errNoShm }

// shmMode returns the permission of a new shared-memory file.
func shmMode(m os.FileMode) uint32 {
	if m == 0 {
		return 0o600
	}
	return uint32(m.Perm())
}
