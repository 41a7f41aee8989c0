package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// Errors. Every parse failure wraps ErrFormat (the message says what is
// wrong, naming the tensor); an unsupported dtype also wraps
// tensor.ErrDType; a file shorter than its header says wraps ErrTruncated
// (and ErrFormat).
var (
	ErrFormat    = errors.New("safetensors: malformed file")
	ErrTruncated = fmt.Errorf("%w: truncated", ErrFormat)
	ErrNotFound  = errors.New("safetensors: no such tensor")
)

// MaxHeaderSize bounds the JSON header (the reference implementation uses
// 100 MB too).
const MaxHeaderSize = 100_000_000

// TensorInfo is one header entry: dtype, shape (outermost dim first) and
// the byte range [Begin, End) relative to the start of the data section.
type TensorInfo struct {
	Name       string       // tensor name (a JSON key of the header)
	DType      tensor.DType // element type
	Shape      []int        // dims, outermost first; empty for a scalar
	Begin, End int64        // byte range in the data section
}

// Header is a parsed safetensors header.
type Header struct {
	// Tensors in file order (ascending Begin).
	Tensors []TensorInfo
	// Metadata is the optional "__metadata__" string map.
	Metadata map[string]string
	// DataOffset is where the data section starts in the file (8 + header
	// length); DataSize is its length in bytes.
	DataOffset, DataSize int64
	index                map[string]int
}

// Lookup returns the entry for name.
func (h *Header) Lookup(name string) (TensorInfo, bool) {
	i, ok := h.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	return h.Tensors[i], true
}

// dtypeName is the safetensors name of dt (UE8M0 is written "F8_E8M0",
// the name the format uses for that type).
func dtypeName(dt tensor.DType) string {
	if dt == tensor.UE8M0T {
		return "F8_E8M0"
	}
	return dt.String()
}

func parseDType(s string) (tensor.DType, error) {
	if s == "F8_E8M0" {
		return tensor.UE8M0T, nil
	}
	return tensor.ParseDType(s)
}

type rawEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// ParseHeader parses the 8-byte length prefix and JSON header at the start
// of b; fileSize is the whole file's size (to check the data section), or
// -1 to skip that check. It needs only the first 8+N bytes of the file.
// Errors wrap ErrFormat (ErrTruncated when b or the file is too short).
func ParseHeader(b []byte, fileSize int64) (*Header, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes, need 8 for the header length", ErrTruncated, len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("%w: header length %d exceeds %d", ErrFormat, n, MaxHeaderSize)
	}
	if uint64(len(b)-8) < n {
		return nil, fmt.Errorf("%w: header length %d, only %d bytes follow", ErrTruncated, n, len(b)-8)
	}
	js := b[8 : 8+n]
	if !utf8.Valid(js) {
		// Upstream reads the header as a UTF-8 string; JSON decoding here
		// would replace the bad bytes with U+FFFD instead.
		return nil, fmt.Errorf("%w: header is not valid UTF-8", ErrFormat)
	}
	if len(bytes.TrimSpace(js)) == 0 || bytes.TrimLeft(js, " \t\r\n")[0] != '{' {
		return nil, fmt.Errorf("%w: header is not a JSON object", ErrFormat)
	}
	raw, meta, err := decodeObject(js)
	if err != nil {
		return nil, err
	}
	h := &Header{Metadata: meta, DataOffset: 8 + int64(n), index: map[string]int{}}
	for _, kv := range raw {
		var e rawEntry
		dec := json.NewDecoder(bytes.NewReader(kv.value))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %v", ErrFormat, kv.key, err)
		}
		dt, err := parseDType(e.DType)
		if err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %w", ErrFormat, kv.key, err)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("%w: tensor %q: data_offsets has %d values, want 2", ErrFormat, kv.key, len(e.DataOffsets))
		}
		if e.Shape == nil {
			return nil, fmt.Errorf("%w: tensor %q: missing shape", ErrFormat, kv.key)
		}
		shape := make([]int, len(e.Shape))
		numel := int64(1)
		for i, d := range e.Shape {
			if d < 0 || d > 1<<40 {
				return nil, fmt.Errorf("%w: tensor %q: dimension %d is %d", ErrFormat, kv.key, i, d)
			}
			shape[i] = int(d)
			if d != 0 && numel > (1<<50)/d {
				return nil, fmt.Errorf("%w: tensor %q: shape %v overflows", ErrFormat, kv.key, e.Shape)
			}
			numel *= d
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < 0 || end < begin {
			return nil, fmt.Errorf("%w: tensor %q: data_offsets [%d, %d]", ErrFormat, kv.key, begin, end)
		}
		if want := numel * int64(dt.Size()); end-begin != want {
			return nil, fmt.Errorf("%w: tensor %q: %d bytes in data_offsets, %v %v needs %d", ErrFormat, kv.key, end-begin, dt, shape, want)
		}
		h.Tensors = append(h.Tensors, TensorInfo{Name: kv.key, DType: dt, Shape: shape, Begin: begin, End: end})
	}
	// Like the reference implementation: tensors tile the data section from
	// 0 with no gap or overlap.
	sort.SliceStable(h.Tensors, func(i, j int) bool {
		a, b := h.Tensors[i], h.Tensors[j]
		return a.Begin < b.Begin || a.Begin == b.Begin && a.End < b.End
	})
	var pos int64
	for i, t := range h.Tensors {
		if t.Begin != pos {
			return nil, fmt.Errorf("%w: tensor %q starts at %d, want %d (gap or overlap)", ErrFormat, t.Name, t.Begin, pos)
		}
		pos = t.End
		h.index[t.Name] = i
	}
	h.DataSize = pos
	if fileSize >= 0 {
		if have := fileSize - h.DataOffset; have < pos {
			return nil, fmt.Errorf("%w: data section has %d bytes, header needs %d", ErrTruncated, max(have, 0), pos)
		} else if have > pos {
			return nil, fmt.Errorf("%w: %d bytes after the last tensor", ErrFormat, have-pos)
		}
	}
	return h, nil
}

type keyValue struct {
	key   string
	value json.RawMessage
}

// decodeObject splits the top-level JSON object into entries, rejecting
// duplicate keys, and decodes "__metadata__".
func decodeObject(js []byte) ([]keyValue, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("%w: header JSON: %v", ErrFormat, err)
	}
	var out []keyValue
	var meta map[string]string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: header JSON: %v", ErrFormat, err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("%w: header JSON: key %v is not a string", ErrFormat, tok)
		}
		if seen[key] {
			return nil, nil, fmt.Errorf("%w: duplicate key %q", ErrFormat, key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, fmt.Errorf("%w: header JSON at %q: %v", ErrFormat, key, err)
		}
		if key == "__metadata__" {
			if err := json.Unmarshal(v, &meta); err != nil {
				return nil, nil, fmt.Errorf("%w: __metadata__ must map strings to strings: %v", ErrFormat, err)
			}
			continue
		}
		if key == "" {
			return nil, nil, fmt.Errorf("%w: empty tensor name", ErrFormat)
		}
		out = append(out, keyValue{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("%w: header JSON: %v", ErrFormat, err)
	}
	if rest, _ := io.ReadAll(dec.Buffered()); len(bytes.TrimSpace(rest)) != 0 {
		return nil, nil, fmt.Errorf("%w: bytes after the header object", ErrFormat)
	}
	return out, meta, nil
}

// Entry is one tensor to write.
type Entry struct {
	Name   string         // unique, not "" or "__metadata__"
	Tensor *tensor.Tensor // contiguous host tensor
}

// EncodeHeader builds the length prefix and JSON header for entries,
// placing tensors largest dtype first, then by name (so every tensor is
// aligned to its element size, as the reference writer does), and padding
// the header with spaces so data starts at a multiple of 8. It returns the
// header bytes and the entries in data order. Errors: ErrFormat for an
// empty, reserved, duplicate or not UTF-8 name or metadata string; tensor.ErrShape/ErrDType for a tensor
// that fails Check, is not contiguous or has a dtype safetensors lacks.
func EncodeHeader(entries []Entry, meta map[string]string) ([]byte, []Entry, error) {
	order := append([]Entry(nil), entries...)
	seen := map[string]bool{}
	for _, e := range order {
		if e.Name == "" || e.Name == "__metadata__" {
			return nil, nil, fmt.Errorf("%w: tensor name %q is reserved", ErrFormat, e.Name)
		}
		if seen[e.Name] {
			return nil, nil, fmt.Errorf("%w: duplicate tensor name %q", ErrFormat, e.Name)
		}
		if !utf8.ValidString(e.Name) {
			// JSON encoding would write another name (U+FFFD for the bad
			// bytes), under which the reader then finds the tensor.
			return nil, nil, fmt.Errorf("%w: tensor name %q is not valid UTF-8", ErrFormat, e.Name)
		}
		seen[e.Name] = true
		t := e.Tensor
		if t == nil {
			return nil, nil, fmt.Errorf("%w: tensor %q is nil", tensor.ErrShape, e.Name)
		}
		if err := t.Check(); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", e.Name, err)
		}
		if !t.IsContiguous() {
			return nil, nil, fmt.Errorf("%w: tensor %q is not contiguous", tensor.ErrShape, e.Name)
		}
		if _, err := parseDType(dtypeName(t.DType)); err != nil || strings.HasPrefix(dtypeName(t.DType), "DType(") {
			return nil, nil, fmt.Errorf("tensor %q: %w: %v", e.Name, tensor.ErrDType, t.DType)
		}
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, b := order[i].Tensor.DType.Size(), order[j].Tensor.DType.Size()
		return a > b || a == b && order[i].Name < order[j].Name
	})
	for k, v := range meta {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, fmt.Errorf("%w: metadata %q: %q is not valid UTF-8", ErrFormat, k, v)
		}
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	if len(meta) > 0 {
		mb, err := json.Marshal(meta)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: metadata: %v", ErrFormat, err)
		}
		buf.WriteString(`"__metadata__":`)
		buf.Write(mb)
	}
	var pos int64
	for i, e := range order {
		if i > 0 || len(meta) > 0 {
			buf.WriteByte(',')
		}
		nb, _ := json.Marshal(e.Name)
		buf.Write(nb)
		n := int64(e.Tensor.Len() * e.Tensor.DType.Size())
		fmt.Fprintf(&buf, `:{"dtype":%q,"shape":[`, dtypeName(e.Tensor.DType))
		for k, d := range e.Tensor.Shape {
			if k > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, "%d", d)
		}
		fmt.Fprintf(&buf, `],"data_offsets":[%d,%d]}`, pos, pos+n)
		pos += n
	}
	buf.WriteByte('}')
	for (8+buf.Len())%8 != 0 {
		buf.WriteByte(' ')
	}
	out := make([]byte, 8+buf.Len())
	binary.LittleEndian.PutUint64(out, uint64(buf.Len()))
	copy(out[8:], buf.Bytes())
	return out, order, nil
}
