package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/safetensors"
	"github.com/fireflyer-go/fireflyer/tensor"
)

func writeSample(t *testing.T) string {
	dir := t.TempDir()
	c, err := fs.Open(context.Background(), dir, fs.WithBackend("posix"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w8, _ := tensor.New(tensor.E4M3T, 128, 64)
	sc, _ := tensor.New(tensor.F32, 1, 1)
	ids, _ := tensor.New(tensor.I64, 3)
	err = safetensors.Write(context.Background(), c, "m.safetensors", []safetensors.Entry{
		{Name: "layer.0.w", Tensor: w8}, {Name: "layer.0.scale", Tensor: sc}, {Name: "ids", Tensor: ids},
	}, &safetensors.Options{Metadata: map[string]string{"format": "pt"}})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "m.safetensors")
}

func TestSafetensorsLs(t *testing.T) {
	p := writeSample(t)
	var out, errb bytes.Buffer
	if code := run([]string{"safetensors", "ls", p}, nil, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "__metadata__ format pt\nids I64 [3] 24\nlayer.0.scale F32 [1,1] 4\nlayer.0.w F8_E4M3 [128,64] 8192\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
	b, _ := os.ReadFile(p)
	out.Reset()
	if code := run([]string{"safetensors", "ls", "--json", "-"}, bytes.NewReader(b), &out, &errb); code != exitOK {
		t.Fatalf("stdin --json: exit %d: %s", code, errb.String())
	}
	var js struct {
		Metadata map[string]string
		Tensors  []struct {
			Name        string
			DType       string
			Shape       []int
			DataOffsets [2]int64 `json:"data_offsets"`
		}
	}
	if err := json.Unmarshal(out.Bytes(), &js); err != nil {
		t.Fatal(err)
	}
	if len(js.Tensors) != 3 || js.Tensors[2].DType != "F8_E4M3" || js.Tensors[2].DataOffsets != [2]int64{28, 8220} || js.Metadata["format"] != "pt" {
		t.Fatalf("json %+v", js)
	}
}

func TestSafetensorsLsErrors(t *testing.T) {
	p := writeSample(t)
	b, _ := os.ReadFile(p)
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, b[:len(b)-5], 0o644)
	for _, tc := range []struct {
		args  []string
		stdin []byte
		code  int
	}{
		{[]string{"safetensors", "ls", bad}, nil, exitUsage},
		{[]string{"safetensors", "ls", "-"}, []byte("garbage"), exitUsage},
		{[]string{"safetensors", "ls", "/no/such/file"}, nil, exitUsage}, // a missing FILE is bad input, as in eplb
		{[]string{"safetensors", "cat", p}, nil, exitUsage},
		{[]string{"safetensors", "ls", p, p}, nil, exitUsage},
		{[]string{"safetensors"}, nil, exitUsage},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, bytes.NewReader(tc.stdin), &out, &errb); code != tc.code || out.Len() != 0 || errb.Len() == 0 {
			t.Errorf("%v: exit %d (want %d), stdout %q, stderr %q", tc.args, code, tc.code, out.String(), errb.String())
		}
	}
}

// zeroReader yields n zero bytes without holding them.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n)
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

// TestSafetensorsLsStdinStreams checks that listing from standard input keeps
// only the header in memory: a large data section is counted, not buffered
// (it used to be read whole with io.ReadAll, 2× the stream in RSS).
func TestSafetensorsLsStdinStreams(t *testing.T) {
	const data = 256 << 20
	hdr := fmt.Sprintf(`{"w":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}`, data, data)
	pre := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	for _, tc := range []struct {
		extra int64
		code  int
		out   string
	}{{0, exitOK, "w U8 [268435456] 268435456\n"}, {1, exitUsage, ""}, {-1, exitUsage, ""}} {
		in := io.MultiReader(bytes.NewReader(pre), strings.NewReader(hdr), &zeroReader{data + tc.extra})
		var out, errb bytes.Buffer
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		code := run([]string{"safetensors", "ls", "-"}, in, &out, &errb)
		runtime.ReadMemStats(&m1)
		if code != tc.code || out.String() != tc.out {
			t.Errorf("extra %d: exit %d, out %q, err %q; want exit %d, out %q", tc.extra, code, out.String(), errb.String(), tc.code, tc.out)
		}
		if a := m1.TotalAlloc - m0.TotalAlloc; a > 16<<20 {
			t.Errorf("extra %d: allocated %d MiB for a %d MiB stream", tc.extra, a>>20, data>>20)
		}
	}
}

func TestSafetensorsLsMissingFileIsBadInput(t *testing.T) {
	for _, path := range []string{filepath.Join(t.TempDir(), "missing.safetensors"), t.TempDir()} {
		if code, _, stderr := runCLI(t, "", "safetensors", "ls", path); code != exitUsage || !strings.Contains(stderr, path) {
			t.Errorf("ls %s: exit %d, stderr %q; want exit 2 naming the file", path, code, stderr)
		}
	}
}

// TestSafetensorsLsQuotesOddNames: a tensor name or metadata entry holding
// a newline, a control code or a space is printed Go-quoted,
// so that every entry stays one line of space-separated fields and no
// escape sequence from the file reaches the terminal (they used to be
// printed raw). Ordinary names are printed as they are.
func TestSafetensorsLsQuotesOddNames(t *testing.T) {
	hdr := "{\"__metadata__\":{\"note\":\"two\\nlines\",\"a b\":\"x y\"}," +
		"\"evil\\u001b[2J\\nfake F32 [1] 4\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}," +
		"\"has space\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}," +
		"\"plain.w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}"
	file := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	file = append(append(file, hdr...), make([]byte, 12)...)
	var out, errb bytes.Buffer
	if code := run([]string{"safetensors", "ls", "-"}, bytes.NewReader(file), &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := map[string]bool{
		`__metadata__ "a b" x y`:                  true,
		`__metadata__ note "two\nlines"`:          true,
		`"evil\x1b[2J\nfake F32 [1] 4" F32 [1] 4`: true,
		`"has space" F32 [1] 4`:                   true,
		`plain.w F32 [1] 4`:                       true,
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), out.String())
	}
	for _, l := range got {
		if strings.ContainsRune(l, 0x1b) {
			t.Errorf("raw escape code in %q", l)
		}
		if !want[l] {
			t.Errorf("unexpected line %q", l)
		}
	}
}
