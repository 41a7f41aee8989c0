package hf3fs

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrKey is returned for a malformed iov or ring key.
var ErrKey = errors.New("hf3fs: malformed key")

// Daemon priorities carried by a ring key: .ph is 0, no suffix is 1, .pl is 2
// (src/fuse/IovTable.cc parseKey).
const (
	PrioHigh   = 0
	PrioNormal = 1
	PrioLow    = 2
)

// Key is the name of a symlink under <mount>/3fs-virt/iovs: a buffer (Iov)
// or, when Ring is set, a ring (Ior). Its text form is
// <uuid>[.b<block>][.r<depth>|.w<depth>][.ph|.pl][.t<ms>][.f<binary flags>].
type Key struct {
	ID        [16]byte // the iov id, printed as a dashed lowercase UUID
	BlockSize int64    // data iovs: IB registration block in bytes; 0 = one block
	Ring      bool     // a ring (Ior) rather than a data iov
	Read      bool     // rings: .r (read) or .w (write)
	Depth     int      // rings: io_depth (>0 exactly n, 0 all, <0 up to -n)
	Prio      int      // rings: PrioHigh, PrioNormal or PrioLow (data iovs: 0)
	TimeoutMs int      // rings: batching timeout in ms (always emitted, .t)
	Flags     uint64   // rings: HF3FS_IOR_* flags, emitted in binary when non-zero
}

// UUID formats id as a 36-character lowercase dashed UUID.
func UUID(id [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], id[10:16])
	return string(b[:])
}

// ParseUUID parses a 36-character lowercase dashed UUID.
func ParseUUID(s string) ([16]byte, error) {
	var id [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' || strings.ToLower(s) != s {
		return id, fmt.Errorf("%w: uuid %q", ErrKey, s)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return id, fmt.Errorf("%w: uuid %q", ErrKey, s)
	}
	return id, nil
}

// String returns the key's symlink name. A ring always carries .t (the
// daemon dereferences an empty optional otherwise) and flags in binary,
// the same text on create and destroy.
func (k Key) String() string {
	var sb strings.Builder
	sb.WriteString(UUID(k.ID))
	if k.BlockSize > 0 {
		sb.WriteString(".b")
		sb.WriteString(strconv.FormatInt(k.BlockSize, 10))
	}
	if !k.Ring {
		return sb.String()
	}
	if k.Read {
		sb.WriteString(".r")
	} else {
		sb.WriteString(".w")
	}
	sb.WriteString(strconv.Itoa(k.Depth))
	switch k.Prio {
	case PrioHigh:
		sb.WriteString(".ph")
	case PrioLow:
		sb.WriteString(".pl")
	}
	sb.WriteString(".t")
	sb.WriteString(strconv.Itoa(k.TimeoutMs))
	if k.Flags != 0 {
		sb.WriteString(".f")
		sb.WriteString(strconv.FormatUint(k.Flags, 2))
	}
	return sb.String()
}

// ParseKey parses a symlink name. It accepts what String produces and the
// upstream grammar's order-free parts; it rejects anything else (unknown
// parts, repeats, a data key with ring parts, a ring key without .t, .f
// or .p).
func ParseKey(s string) (Key, error) {
	var k Key
	if len(s) < 36 || len(s) > 200 {
		return k, fmt.Errorf("%w: %q", ErrKey, s)
	}
	id, err := ParseUUID(s[:36])
	if err != nil {
		return k, err
	}
	k.ID = id
	rest := s[36:]
	if rest == "" {
		return k, nil
	}
	if rest[0] != '.' {
		return k, fmt.Errorf("%w: %q", ErrKey, s)
	}
	seen := map[byte]bool{}
	var hasT, hasF, hasP bool
	for _, part := range strings.Split(rest[1:], ".") {
		if part == "" {
			return k, fmt.Errorf("%w: empty part in %q", ErrKey, s)
		}
		c, v := part[0], part[1:]
		kind := c
		if c == 'w' {
			kind = 'r'
		}
		if seen[kind] {
			return k, fmt.Errorf("%w: repeated .%c in %q", ErrKey, c, s)
		}
		seen[kind] = true
		switch c {
		case 'b':
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return k, fmt.Errorf("%w: block size in %q", ErrKey, s)
			}
			k.BlockSize = n
		case 'r', 'w':
			n, err := strconv.Atoi(v)
			if err != nil || n < -32768 || n > 32768 {
				return k, fmt.Errorf("%w: io depth in %q", ErrKey, s)
			}
			k.Ring, k.Read, k.Depth = true, c == 'r', n
		case 'p':
			switch v {
			case "h":
				k.Prio = PrioHigh
			case "l":
				k.Prio = PrioLow
			default:
				return k, fmt.Errorf("%w: priority in %q", ErrKey, s)
			}
			hasP = true
		case 't':
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return k, fmt.Errorf("%w: timeout in %q", ErrKey, s)
			}
			k.TimeoutMs, hasT = n, true
		case 'f':
			n, err := strconv.ParseUint(v, 2, 64)
			if err != nil {
				return k, fmt.Errorf("%w: flags in %q", ErrKey, s)
			}
			k.Flags, hasF = n, true
		default:
			return k, fmt.Errorf("%w: unknown part .%s in %q", ErrKey, part, s)
		}
	}
	if !k.Ring && (hasT || hasF || hasP) {
		return k, fmt.Errorf("%w: ring parts on a data iov %q", ErrKey, s)
	}
	if k.Ring && !(hasT || hasF || hasP) {
		return k, fmt.Errorf("%w: ring key %q has none of .t .f .p", ErrKey, s)
	}
	if k.Ring && !hasP {
		k.Prio = PrioNormal
	}
	return k, nil
}
