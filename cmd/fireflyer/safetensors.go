package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

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
	}
	var h *safetensors.Header
	var size int64
	if path == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer safetensors ls: reading stdin: %v\n", err)
			return exitFail
		}
		h, err = safetensors.ParseHeader(b, int64(len(b)))
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer safetensors ls: stdin: %v\n", err)
			return exitUsage
		}
		size = int64(len(b))
	} else {
		f, err := safetensors.OpenMmap(path)
		if err != nil {
			fmt.Fprintf(stderr, "fireflyer safetensors ls: %v\n", err)
			if errors.Is(err, safetensors.ErrFormat) {
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
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
		return exitOK
	}
	keys := make([]string, 0, len(h.Metadata))
	for k := range h.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(stdout, "__metadata__ %s %s\n", k, h.Metadata[k])
	}
	for _, t := range h.Tensors {
		dims := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = fmt.Sprint(d)
		}
		fmt.Fprintf(stdout, "%s %s [%s] %d\n", t.Name, dtypeLabel(t), strings.Join(dims, ","), t.End-t.Begin)
	}
	return exitOK
}

func dtypeLabel(t safetensors.TensorInfo) string {
	if s := t.DType.String(); s != "UE8M0" {
		return s
	}
	return "F8_E8M0"
}
