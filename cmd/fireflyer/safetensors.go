package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/fireflyer-go/fireflyer/fs/safetensors"
)

func init() {
	register(command{name: "safetensors", summary: "inspect safetensors files (safetensors ls FILE)", run: runSafetensors})
}

func runSafetensors(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, "usage: fireflyer safetensors ls [--json] FILE|-\n\nverbs:\n  ls   list tensors (name, dtype, shape, bytes) and metadata")
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] != "ls" {
		fmt.Fprintf(stderr, "fireflyer safetensors: unknown verb %q (want ls)\n", args[0])
		return exitUsage
	}
	fl := newFlagSet("safetensors ls", "safetensors ls [--json] FILE|-", stderr)
	asJSON := fl.Bool("json", false, "print one JSON object instead of text")
	if code, ok := parseFlags(fl, args[1:]); !ok {
		return code
	}
	if fl.NArg() > 1 {
		fmt.Fprintf(stderr, "fireflyer safetensors ls: want one FILE argument, got %d\n", fl.NArg())
		return exitUsage
	}
	path := "-"
	if fl.NArg() == 1 {
		path = fl.Arg(0)
	} else if isTerminal(stdin) {
		// Nothing is piped in: waiting on the terminal for a binary file
		// would look like a hang.
		fmt.Fprintln(stderr, "fireflyer safetensors ls: no FILE given and standard input is a terminal\nusage: fireflyer safetensors ls [--json] FILE|-  (or pipe a file in: ... | fireflyer safetensors ls)")
		return exitUsage
	}
	var h *safetensors.Header
	var size int64
	if path == "-" {
		// Keep only the header in memory: the data section is counted, not
		// stored, so a checkpoint of any size can be piped through.
		b, n, err := readHeaderStream(stdin)
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer safetensors ls: reading stdin: %v\n", err)
			return exitFail
		}
		h, err = safetensors.ParseHeader(b, n)
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer safetensors ls: stdin: %v\n", err)
			return exitUsage
		}
		size = n
	} else {
		f, err := safetensors.OpenMmap(path)
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer safetensors ls: %v\n", err)
			// A malformed, missing or non-regular FILE is bad input (exit 2,
			// as for every subcommand's FILE); other I/O errors exit 1.
			if errors.Is(err, safetensors.ErrFormat) || errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.EISDIR) {
				return exitUsage
			}
			return exitFail
		}
		defer f.Close()
		h = f.Header
		size = h.DataOffset + h.DataSize
	}
	if *asJSON {
		type jt struct {
			Name        string   `json:"name"`
			DType       string   `json:"dtype"`
			Shape       []int    `json:"shape"`
			DataOffsets [2]int64 `json:"data_offsets"`
		}
		out := struct {
			File       string            `json:"file"`
			Size       int64             `json:"size"`
			HeaderSize int64             `json:"header_size"`
			Metadata   map[string]string `json:"metadata"`
			Tensors    []jt              `json:"tensors"`
		}{File: path, Size: size, HeaderSize: h.DataOffset - 8, Metadata: h.Metadata, Tensors: []jt{}}
		for _, t := range h.Tensors {
			out.Tensors = append(out.Tensors, jt{t.Name, dtypeLabel(t), t.Shape, [2]int64{t.Begin, t.End}})
		}
		return writeJSON(stdout, stderr, "safetensors ls", out)
	}
	keys := make([]string, 0, len(h.Metadata))
	for k := range h.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(stdout, "__metadata__ %s %s\n", lsField(k, false), lsField(h.Metadata[k], true))
	}
	for _, t := range h.Tensors {
		dims := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = fmt.Sprint(d)
		}
		fmt.Fprintf(stdout, "%s %s [%s] %d\n", lsField(t.Name, false), dtypeLabel(t), strings.Join(dims, ","), t.End-t.Begin)
	}
	return exitOK
}

// lsField returns a name or metadata string from the file as ls prints it:
// as it is, or Go-quoted when printing it raw would break the one line per
// entry, space-separated format or reach the terminal as control codes (a
// newline, an escape sequence, invalid UTF-8, and for a name or key, which
// are not the last field, a space or nothing at all).
func lsField(s string, last bool) string {
	if s == "" && !last || strings.HasPrefix(s, `"`) || !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !strconv.IsPrint(r) || r == ' ' && !last {
			return strconv.Quote(s)
		}
	}
	return s
}

// readHeaderStream reads the 8-byte length prefix and the JSON header from r
// (at most 8+safetensors.MaxHeaderSize bytes; a longer claimed length is left
// for ParseHeader to reject) and then discards the rest of r, returning the
// prefix and header bytes and the total length of the stream.
func readHeaderStream(r io.Reader) ([]byte, int64, error) {
	b := make([]byte, 8)
	k, err := io.ReadFull(r, b)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return b[:k], int64(k), nil
	} else if err != nil {
		return nil, 0, err
	}
	hl := binary.LittleEndian.Uint64(b)
	if hl > safetensors.MaxHeaderSize {
		rest, err := io.Copy(io.Discard, r)
		return b, 8 + rest, err
	}
	var hdr bytes.Buffer
	m, err := io.CopyN(&hdr, r, int64(hl))
	if err != nil && err != io.EOF {
		return nil, 0, err
	}
	rest, err := io.Copy(io.Discard, r)
	return append(b, hdr.Bytes()...), 8 + m + rest, err
}

func dtypeLabel(t safetensors.TensorInfo) string {
	if s := t.DType.String(); s != "UE8M0" {
		return s
	}
	return "F8_E8M0"
}
