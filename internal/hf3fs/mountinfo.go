package hf3fs

import (
	"bufio"
	"io"
	"path/filepath"
	"strings"
)

// FSType is the fstype a 3FS FUSE mount shows in /proc/self/mountinfo.
const FSType = "fuse.hf3fs"

// FindMount scans mountinfo text (proc(5) format) for the fuse.hf3fs mount
// that holds path (absolute and clean) and returns its mount point; the
// deepest mount wins. A fuse.hf3fs mount named .../3fs-virt stands for its
// parent, as in hf3fs_extract_mount_point. ok is false when path is on no 3FS mount.
func FindMount(r io.Reader, path string) (mp string, ok bool, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i, x := range f {
			if x == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(f) || f[sep+1] != FSType {
			continue
		}
		m := filepath.Clean(unescapeMount(f[4]))
		if filepath.Base(m) == "3fs-virt" {
			// A 3FS subdirectory mounted on its own: its 3fs-virt is
			// mounted separately, and the mount point is the parent.
			m = filepath.Dir(m)
		}
		if under(path, m) && len(m) > len(mp) {
			mp, ok = m, true
		}
	}
	return mp, ok, sc.Err()
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// Under reports whether the clean absolute path lies in dir (or is dir).
func Under(path, dir string) bool { return under(filepath.Clean(path), filepath.Clean(dir)) }

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOct(s[i+1]) && isOct(s[i+2]) && isOct(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOct(c byte) bool { return c >= '0' && c <= '7' }
