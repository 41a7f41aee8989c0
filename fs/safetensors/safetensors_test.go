package safetensors_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/errorfs"
	"github.com/fireflyer-go/fireflyer/fs/safetensors"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// sample returns one tensor of every dtype the format must carry, with
// known values.
func sample(t *testing.T) []safetensors.Entry {
	t.Helper()
	f32 := make([]float32, 3*5)
	for i := range f32 {
		f32[i] = float32(i)*0.5 - 3
	}
	bf := make([]tensor.BF16, 7)
	f16 := make([]tensor.F16, 4*2)
	e4 := make([]tensor.E4M3, 2*3*4)
	for i := range bf {
		bf[i] = tensor.BF16FromFloat32(float32(i) * 1.25)
	}
	for i := range f16 {
		f16[i] = tensor.F16FromFloat32(float32(i) / 8)
	}
	for i := range e4 {
		e4[i] = tensor.E4M3FromFloat32(float32(i-12) * 0.75)
	}
	i32 := []int32{1, -2, 3, math.MaxInt32, math.MinInt32}
	i64 := []int64{-1, 1 << 40, math.MinInt64}
	mk := func(tt *tensor.Tensor, err error) *tensor.Tensor {
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	return []safetensors.Entry{
		{Name: "w.f32", Tensor: mk(tensor.FromSlice(f32, 3, 5))},
		{Name: "w.bf16", Tensor: mk(tensor.FromSlice(bf, 7))},
		{Name: "w.f16", Tensor: mk(tensor.FromSlice(f16, 4, 2))},
		{Name: "w.fp8", Tensor: mk(tensor.FromSlice(e4, 2, 3, 4))},
		{Name: "idx.i32", Tensor: mk(tensor.FromSlice(i32, 5))},
		{Name: "idx.i64", Tensor: mk(tensor.FromSlice(i64, 3))},
		{Name: "scalar", Tensor: mk(tensor.FromSlice([]float32{42}))},
		{Name: "empty", Tensor: mk(tensor.FromSlice([]float32{}, 0, 4))},
	}
}

func same(t *testing.T, f *safetensors.File, entries []safetensors.Entry) {
	t.Helper()
	if len(f.Names()) != len(entries) {
		t.Fatalf("%d tensors, want %d", len(f.Names()), len(entries))
	}
	for _, e := range entries {
		got, err := f.Tensor(e.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.DType != e.Tensor.DType || !equalInts(got.Shape, e.Tensor.Shape) || !bytes.Equal(got.Data, e.Tensor.Data) {
			t.Fatalf("%s: got %v %v %x, want %v %v %x", e.Name, got.DType, got.Shape, got.Data, e.Tensor.DType, e.Tensor.Shape, e.Tensor.Data)
		}
		if err := got.Check(); err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
	}
	if g, w := got32(t, f, "w.fp8")[5], tensor.E4M3FromFloat32(float32(5-12)*0.75).Float32(); g != w {
		t.Fatalf("fp8 element 5 = %v, want %v", g, w)
	}
}

func got32(t *testing.T, f *safetensors.File, name string) []float32 {
	tt, _ := f.Tensor(name)
	out := make([]float32, tt.Len())
	tensor.DecodeE4M3(out, tt.E4M3s())
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRoundTripEveryBackend(t *testing.T) {
	entries := sample(t)
	meta := map[string]string{"format": "pt", "step": "100"}
	for _, be := range []string{"mem", "posix", "uring"} {
		t.Run(be, func(t *testing.T) {
			dir := t.TempDir()
			c, err := fs.Open(context.Background(), dir, fs.WithBackend(be))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Small chunks so the write and read cross many chunk I/Os.
			opts := &safetensors.Options{Metadata: meta, Chunk: 16, Depth: 4}
			if err := safetensors.Write(context.Background(), c, "m.safetensors", entries, opts); err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.Open(context.Background(), c, "m.safetensors", &safetensors.Options{Chunk: 32, Depth: 3})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			same(t, f, entries)
			if f.Metadata()["step"] != "100" || f.Metadata()["format"] != "pt" {
				t.Fatalf("metadata %v", f.Metadata())
			}
			if _, err := f.Tensor("nope"); !errors.Is(err, safetensors.ErrNotFound) || !strings.Contains(err.Error(), "nope") {
				t.Fatalf("missing tensor: %v", err)
			}
			if be == "mem" {
				return
			}
			m, err := safetensors.OpenMmap(filepath.Join(dir, "m.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			same(t, m, entries)
		})
	}
}

func TestLayoutAlignedAndOrdered(t *testing.T) {
	hdr, order, err := safetensors.EncodeHeader(sample(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(hdr)%8 != 0 {
		t.Fatalf("header of %d bytes: data not 8-byte aligned", len(hdr))
	}
	if order[0].Name != "idx.i64" || order[len(order)-1].Name != "w.fp8" {
		t.Fatalf("order %v: want widest dtype first, then by name", order)
	}
	var total int
	for _, e := range order {
		total += len(e.Tensor.Data)
	}
	file := append(hdr, make([]byte, total)...)
	h, err := safetensors.ParseHeader(file, int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range h.Tensors {
		if (h.DataOffset+ti.Begin)%int64(ti.DType.Size()) != 0 {
			t.Errorf("%s at %d not aligned to %d", ti.Name, h.DataOffset+ti.Begin, ti.DType.Size())
		}
	}
}

// A file written by the reference Python implementation
// (safetensors.torch.save_file({"a": torch.zeros(2, dtype=torch.float16)},
// metadata={"k": "v"})), byte for byte.
func TestReadsReferenceLayout(t *testing.T) {
	js := `{"__metadata__":{"k":"v"},"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`
	for len(js)%8 != 0 {
		js += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	b = append(b, js...)
	b = append(b, 0x00, 0x3c, 0x00, 0xc0) // 1.0, -2.0 in F16
	f, err := safetensors.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.Tensor("a")
	v := a.F16s()
	if v[0].Float32() != 1 || v[1].Float32() != -2 || f.Metadata()["k"] != "v" {
		t.Fatalf("got %v %v %v", v[0].Float32(), v[1].Float32(), f.Metadata())
	}
}

func header(js string, data int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	b = append(b, js...)
	return append(b, make([]byte, data)...)
}

func TestMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		file []byte
		want error
	}{
		{"empty", nil, safetensors.ErrTruncated},
		{"length only", []byte{5, 0, 0, 0, 0, 0, 0, 0}, safetensors.ErrTruncated},
		{"huge header length", binary.LittleEndian.AppendUint64(nil, 1<<40), safetensors.ErrFormat},
		{"not an object", header(`[1,2]`, 0), safetensors.ErrFormat},
		{"bad json", header(`{"a":`, 0), safetensors.ErrFormat},
		{"unknown dtype", header(`{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}`, 1), tensor.ErrDType},
		{"size mismatch", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), safetensors.ErrFormat},
		{"negative dim", header(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4), safetensors.ErrFormat},
		{"gap", header(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2), safetensors.ErrFormat},
		{"overlap", header(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, 3), safetensors.ErrFormat},
		{"truncated data", header(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, 10), safetensors.ErrTruncated},
		{"trailing data", header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 8), safetensors.ErrFormat},
		{"duplicate name", header(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2), safetensors.ErrFormat},
		{"metadata not strings", header(`{"__metadata__":{"k":1}}`, 0), safetensors.ErrFormat},
		{"missing offsets", header(`{"a":{"dtype":"U8","shape":[1]}}`, 1), safetensors.ErrFormat},
		{"unknown field", header(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}`, 1), safetensors.ErrFormat},
		{"garbage after object", header(`{} {}`, 0), safetensors.ErrFormat},
		// Upstream reads the header as UTF-8 and rejects it otherwise; Go's
		// JSON decoder used to turn the bytes into U+FFFD silently.
		{"invalid UTF-8 name", header("{\"w\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), safetensors.ErrFormat},
		{"invalid UTF-8 metadata", header("{\"__metadata__\":{\"k\":\"\xc3\"}}", 0), safetensors.ErrFormat},
		{"overflowing shape", header(`{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}`, 4), safetensors.ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := safetensors.Parse(tc.file)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse: %v, want %v", err, tc.want)
			}
		})
	}
	// A tensor named in the error message.
	_, err := safetensors.Parse(header(`{"layer.7":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4))
	if err == nil || !strings.Contains(err.Error(), "layer.7") {
		t.Fatalf("error does not name the tensor: %v", err)
	}
}

func TestTruncatedFileThroughClient(t *testing.T) {
	dir := t.TempDir()
	c, _ := fs.Open(context.Background(), dir, fs.WithBackend("posix"))
	defer c.Close()
	p := filepath.Join(dir, "t")
	for _, cut := range []int64{3, 20, -1} {
		if err := safetensors.Write(context.Background(), c, "t", sample(t), nil); err != nil {
			t.Fatal(err)
		}
		if cut < 0 {
			st, _ := os.Stat(p)
			cut = st.Size() - 1
		}
		os.Truncate(p, cut)
		if _, err := safetensors.Open(context.Background(), c, "t", nil); !errors.Is(err, safetensors.ErrTruncated) {
			t.Errorf("cut at %d: %v, want ErrTruncated", cut, err)
		}
		if _, err := safetensors.OpenMmap(p); !errors.Is(err, safetensors.ErrTruncated) {
			t.Errorf("mmap, cut at %d: %v, want ErrTruncated", cut, err)
		}
	}
}

func TestWriterAndAtomic(t *testing.T) {
	dir := t.TempDir()
	c, _ := fs.Open(context.Background(), dir)
	defer c.Close()
	w := safetensors.NewWriter(c, "ckpt.safetensors", &safetensors.Options{Atomic: true})
	for _, e := range sample(t) {
		if err := w.Add(e.Name, e.Tensor); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Add("w.f32", sample(t)[0].Tensor); !errors.Is(err, safetensors.ErrFormat) {
		t.Fatalf("duplicate Add: %v", err)
	}
	w.SetMetadata("step", "7")
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ckpt.safetensors.tmp")); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
	f, err := safetensors.Open(context.Background(), c, "ckpt.safetensors", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	same(t, f, sample(t))
	if f.Metadata()["step"] != "7" {
		t.Fatal("metadata lost")
	}
}

func TestWriteErrors(t *testing.T) {
	mem, _ := fs.NewBackend("mem", fs.BackendOpts{})
	efs := errorfs.Wrap(mem, errorfs.Options{Seed: 3})
	c, _ := fs.Open(context.Background(), "", fs.WithBackendValue(efs))
	defer c.Close()
	bad := &tensor.Tensor{DType: tensor.F32, Shape: []int{4}, Strides: []int{1}, Data: make([]byte, 8)}
	if err := safetensors.Write(context.Background(), c, "x", []safetensors.Entry{{Name: "b", Tensor: bad}}, nil); !errors.Is(err, tensor.ErrShape) {
		t.Fatalf("short tensor: %v", err)
	}
	strided := &tensor.Tensor{DType: tensor.F32, Shape: []int{2, 2}, Strides: []int{1, 2}, Data: make([]byte, 16)}
	if err := safetensors.Write(context.Background(), c, "x", []safetensors.Entry{{Name: "s", Tensor: strided}}, nil); !errors.Is(err, tensor.ErrShape) {
		t.Fatalf("non-contiguous tensor: %v", err)
	}
	// Names and metadata that are not UTF-8 would be written as other
	// strings (U+FFFD for the bad bytes); they are refused.
	ok := &tensor.Tensor{DType: tensor.F32, Shape: []int{1}, Strides: []int{1}, Data: make([]byte, 4)}
	if err := safetensors.Write(context.Background(), c, "x", []safetensors.Entry{{Name: "w\xff", Tensor: ok}}, nil); !errors.Is(err, safetensors.ErrFormat) {
		t.Fatalf("name not UTF-8: %v", err)
	}
	if err := safetensors.Write(context.Background(), c, "x", []safetensors.Entry{{Name: "w", Tensor: ok}},
		&safetensors.Options{Metadata: map[string]string{"k": "\xc3"}}); !errors.Is(err, safetensors.ErrFormat) {
		t.Fatalf("metadata not UTF-8: %v", err)
	}
	efs.SetRules(errorfs.Rule{Match: func(i errorfs.Info) bool { return i.Off > 0 }, Inject: errorfs.Injection{Err: syscall.EIO}})
	if err := safetensors.Write(context.Background(), c, "x", sample(t), &safetensors.Options{Chunk: 64}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("EIO during write: %v", err)
	}
	efs.SetRules()
	if err := safetensors.Write(context.Background(), c, "ok", sample(t), &safetensors.Options{Chunk: 64}); err != nil {
		t.Fatal(err)
	}
	efs.SetRules(errorfs.Rule{Op: errorfs.Reads, Prob: 0.5, Inject: errorfs.Injection{Short: true}})
	f, err := safetensors.Open(context.Background(), c, "ok", &safetensors.Options{Chunk: 64})
	if err != nil {
		t.Fatalf("short reads must be retried: %v", err)
	}
	same(t, f, sample(t))
	f.Close()
}

func FuzzParse(f *testing.F) {
	hdr, order, _ := safetensors.EncodeHeader([]safetensors.Entry{
		{Name: "a", Tensor: &tensor.Tensor{DType: tensor.F32, Shape: []int{2}, Strides: []int{1}, Data: make([]byte, 8)}},
		{Name: "b", Tensor: &tensor.Tensor{DType: tensor.E4M3T, Shape: []int{3}, Strides: []int{1}, Data: make([]byte, 3)}},
	}, map[string]string{"k": "v"})
	_ = order
	f.Add(append(hdr, make([]byte, 11)...))
	f.Add(header(`{"a":{"dtype":"BF16","shape":[1,1],"data_offsets":[0,2]}}`, 2))
	f.Add(header(`{}`, 0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := safetensors.Parse(b)
		if err != nil {
			if !errors.Is(err, safetensors.ErrFormat) {
				t.Fatalf("error not ErrFormat: %v", err)
			}
			return
		}
		// Whatever parses must give checkable tensors inside the data and
		// re-encode to an equivalent file.
		var entries []safetensors.Entry
		for _, n := range sf.Names() {
			tt, err := sf.Tensor(n)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.Check(); err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			entries = append(entries, safetensors.Entry{Name: n, Tensor: tt})
		}
		hdr, order, err := safetensors.EncodeHeader(entries, sf.Metadata())
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		for _, e := range order {
			hdr = append(hdr, e.Tensor.Data...)
		}
		back, err := safetensors.Parse(hdr)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		for _, n := range sf.Names() {
			x, _ := sf.Tensor(n)
			y, _ := back.Tensor(n)
			if !bytes.Equal(x.Data, y.Data) || x.DType != y.DType || !equalInts(x.Shape, y.Shape) {
				t.Fatalf("%s changed in round trip", n)
			}
		}
	})
}

// TestOpenDirectory: a directory is an I/O error (EISDIR), not a
// "truncated: 0 bytes" malformed file.
func TestOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := safetensors.OpenMmap(dir)
	if !errors.Is(err, syscall.EISDIR) || errors.Is(err, safetensors.ErrFormat) {
		t.Errorf("OpenMmap(directory) = %v, want EISDIR and not ErrFormat", err)
	}
}
