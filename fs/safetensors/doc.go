// Package safetensors reads and writes the safetensors tensor file format
// with the dtypes DeepSeek checkpoints use (F8_E4M3, BF16, F16, F32, I32,
// I64, plus F64, U8, F8_E5M2 and F8_E8M0), moving the bytes through the fs
// client's rings and registered buffers.
//
// Upstream: huggingface/safetensors (the format: an 8-byte little-endian
// header length N, N bytes of JSON mapping each tensor name to
// {"dtype","shape","data_offsets":[begin,end]} plus an optional
// "__metadata__" string map, then the raw little-endian data; offsets are
// relative to the data section and must tile it with no gap or overlap).
// The code is our own; the validation rules follow the reference
// implementation's.
//
// Writing: Write (or a Writer) lays tensors out widest dtype first, then by
// name, so each is aligned to its element size, pads the header with spaces
// to a multiple of 8, copies the bytes into a registered fs.Buffer and
// writes them with a write ring, several chunks in flight; then fsync, and
// with Options.Atomic a rename into place.
//
// Reading: OpenReader reads only the header; Reader.ReadInto then reads a
// named tensor, or a byte range of it, with a read ring straight into a
// Region of the caller's registered fs.Buffer (ReadTensor into a new one),
// so a loader reads just the tensors it needs, each once, with no copy
// afterwards. Open reads the header, then the whole data section with a
// read ring straight into one registered Buffer; OpenMmap maps the file
// read-only instead; Parse takes bytes already in memory. Tensors returned
// by File.Tensor alias that memory (no copy) until File.Close.
//
// Malformed input never panics: errors wrap ErrFormat (ErrTruncated for a
// short file; tensor.ErrDType as well for an unknown dtype) and name the
// tensor concerned.
//
// Shortest program:
//
//	c, _ := fs.Open(ctx, "/ckpt")
//	w := safetensors.NewWriter(c, "step-100.safetensors", &safetensors.Options{Atomic: true})
//	w.Add("layer.0.weight", weight) // *tensor.Tensor
//	w.Close(ctx)
//	r, _ := safetensors.OpenReader(ctx, c, "step-100.safetensors", nil)
//	defer r.Close()
//	weight2, buf, _ := r.ReadTensor(ctx, "layer.0.weight") // Data aliases buf
//	defer buf.Close()
//
// Where it sits: a format on top of fs (docs/architecture.md); it imports fs
// and tensor (and internal/mmap for OpenMmap) only.
package safetensors
