package fs

import "golang.org/x/sys/unix"

func isDirect(flag int) bool { return flag&unix.O_DIRECT != 0 }

// dioAlign returns the O_DIRECT memory and offset alignment statx reports
// (STATX_DIOALIGN), defaulting to 4096 when the file system does not say.
func dioAlign(fd int) (mem, off int) {
	var st unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &st); err == nil && st.Mask&unix.STATX_DIOALIGN != 0 && st.Dio_offset_align != 0 {
		return int(st.Dio_mem_align), int(st.Dio_offset_align)
	}
	return 4096, 4096
}

// ODirect is the OpenFile flag for direct I/O that bypasses the page cache
// (unix.O_DIRECT on Linux; 0 where the platform has none).
const ODirect = unix.O_DIRECT
