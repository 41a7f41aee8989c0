package cuda_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fireflyer-go/fireflyer/cuda"
	"github.com/fireflyer-go/fireflyer/cuda/cudatest"
)

// TestFakeExportsEverySymbol keeps the fake in step with the loader: every
// entry point the loader resolves must be one the fake exports.
func TestFakeExportsEverySymbol(t *testing.T) {
	req, opt := cuda.DriverSymbols()
	have := cudatest.Symbols()
	for _, s := range slices.Concat(req, opt, cuda.NVRTCSymbols()) {
		if !slices.Contains(have, s) {
			t.Errorf("fake lacks %s", s)
		}
	}
	for _, v2 := range []string{"cuMemAlloc_v2", "cuMemcpyHtoD_v2", "cuMemcpyDtoH_v2", "cuMemFree_v2", "cuDevicePrimaryCtxRelease_v2", "cuStreamDestroy_v2", "cuEventDestroy_v2"} {
		if !slices.Contains(req, v2) {
			t.Errorf("loader does not resolve the versioned name %s", v2)
		}
	}
}

func TestLoadDriverAndDeviceInfo(t *testing.T) {
	f := cudatest.New()
	d, c := f.Open(t)
	if d.Version() != 13000 || d.Path() != "libcuda.so.1" {
		t.Errorf("version %d path %q", d.Version(), d.Path())
	}
	n, err := d.DeviceCount()
	if err != nil || n != 1 {
		t.Fatalf("DeviceCount = %d, %v", n, err)
	}
	info := c.Info()
	if info.Name != "NVIDIA H200" || info.Major != 9 || info.Minor != 0 || info.SMs != 132 ||
		info.SharedMemOptin != 232448 || info.TotalMem != 143771<<20 || info.Arch() != "sm_90a" {
		t.Errorf("info %+v", info)
	}
	if f.PrimaryContextRefs() != 1 {
		t.Errorf("primary context retained %d times", f.PrimaryContextRefs())
	}
	if _, err := d.Open(3); !errors.Is(err, cuda.ErrInvalid) || !strings.Contains(err.Error(), "ordinal 3") {
		t.Errorf("Open(3): %v", err)
	}
}

func TestLoadFailures(t *testing.T) {
	t.Run("no library", func(t *testing.T) {
		_, err := cuda.LoadDriver(failOpener{})
		if !errors.Is(err, cuda.ErrUnavailable) || !strings.Contains(err.Error(), "libcuda.so.1: no such file") {
			t.Fatalf("err = %v", err)
		}
		_, err = cuda.LoadNVRTC(failOpener{})
		if !errors.Is(err, cuda.ErrUnavailable) || !strings.Contains(err.Error(), "libnvrtc.so.13") || !strings.Contains(err.Error(), "libnvrtc.so.12") {
			t.Fatalf("nvrtc err = %v", err)
		}
	})
	t.Run("missing required symbol", func(t *testing.T) {
		f := cudatest.New()
		f.Missing["cuMemAlloc_v2"] = true
		_, err := cuda.LoadDriver(f.Opener())
		if !errors.Is(err, cuda.ErrUnavailable) || !strings.Contains(err.Error(), "cuMemAlloc_v2") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing optional symbol", func(t *testing.T) {
		f := cudatest.New()
		f.Missing["cuLaunchKernelEx"] = true
		f.Missing["cuTensorMapEncodeTiled"] = true
		f.Kernels["k"] = cudatest.Kernel{}
		d, c := f.Open(t)
		if d.Has("cuLaunchKernelEx") || !d.Has("cuLaunchKernel") {
			t.Fatal("Has is wrong")
		}
		fn := loadKernel(t, c, "k")
		err := c.Launch(fn, cuda.LaunchConfig{Grid: cuda.Dim3{X: 2}, Block: cuda.Dim3{X: 32}, Cluster: cuda.Dim3{X: 2}}, nil)
		if !errors.Is(err, cuda.ErrNotSupported) || !strings.Contains(err.Error(), "cuLaunchKernelEx") {
			t.Fatalf("cluster launch without cuLaunchKernelEx: %v", err)
		}
		_, err = d.EncodeTiled(cuda.TiledTensorMap{DataType: cuda.TMAUint8, Dims: []uint64{128}, Box: []uint32{64}})
		if !errors.Is(err, cuda.ErrNotSupported) {
			t.Fatalf("EncodeTiled without the entry point: %v", err)
		}
	})
	t.Run("driver without device", func(t *testing.T) {
		f := cudatest.New()
		f.InitStatus = cudatest.ErrNoDevice
		_, err := cuda.LoadDriver(f.Opener())
		if !errors.Is(err, cuda.ErrUnavailable) || !strings.Contains(err.Error(), "cuInit: CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("zero devices", func(t *testing.T) {
		f := cudatest.New()
		f.Devices = nil
		d, err := cuda.LoadDriver(f.Opener())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Open(0); !errors.Is(err, cuda.ErrUnavailable) {
			t.Fatalf("Open with no device: %v", err)
		}
	})
}

type failOpener struct{}

func (failOpener) Open(name string) (cuda.Library, error) {
	return nil, fmt.Errorf("no such file")
}

func TestErrorTranslation(t *testing.T) {
	f := cudatest.New()
	f.MemLimit = 1 << 20
	_, c := f.Open(t)
	_, err := c.Alloc(2 << 20)
	var ce *cuda.Error
	if !errors.As(err, &ce) || ce.Func != "cuMemAlloc_v2" || ce.Code != 2 || ce.Name != "CUDA_ERROR_OUT_OF_MEMORY" || ce.Message != "out of memory" {
		t.Fatalf("err = %#v", err)
	}
	if !errors.Is(err, cuda.ErrOutOfMemory) || errors.Is(err, cuda.ErrUnavailable) {
		t.Errorf("errors.Is wrong for %v", err)
	}
	if got, want := err.Error(), "cuda: cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY (out of memory)"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	_, err = c.LoadModule([]byte("not a cubin"))
	if err == nil || err.Error() != "cuda: cuModuleLoadData: CUDA_ERROR_INVALID_IMAGE (device kernel image is invalid)" {
		t.Errorf("bad image: %v", err)
	}
	// A status the driver has no name for still yields a readable error.
	if err := c.Memset(0xdead, 0, 16); err == nil || !strings.Contains(err.Error(), "cuMemsetD8_v2: CUDA_ERROR_INVALID_VALUE") {
		t.Errorf("memset of unallocated memory: %v", err)
	}
	if _, err := c.Alloc(0); !errors.Is(err, cuda.ErrInvalid) {
		t.Errorf("Alloc(0): %v", err)
	}
}

func TestMemoryRoundTrip(t *testing.T) {
	f := cudatest.New()
	_, c := f.Open(t)
	src := make([]byte, 1000)
	for i := range src {
		src[i] = byte(i * 7)
	}
	a, err := c.Upload(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Alloc(len(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CopyDtoD(b.Ptr, a.Ptr, len(src)); err != nil {
		t.Fatal(err)
	}
	if err := c.Memset(b.Ptr.Add(10), 0xAB, 5); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(src))
	if err := c.CopyDtoH(got, b.Ptr); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(src)
	for i := 10; i < 15; i++ {
		want[i] = 0xAB
	}
	if !slices.Equal(got, want) {
		t.Fatal("round trip differs")
	}
	free, total, err := c.MemInfo()
	if err != nil || total != 1<<30 || free != total-2000 {
		t.Errorf("MemInfo = %d, %d, %v", free, total, err)
	}
	for _, buf := range []*cuda.Buffer{a, b, a} { // a twice: second Free is a no-op
		if err := buf.Free(); err != nil {
			t.Fatal(err)
		}
	}
	if f.Mem.Live() != 0 {
		t.Errorf("%d allocations leaked", f.Mem.Live())
	}
}

// TestContextIsThreadBound drives one context from many goroutines and
// checks that every context-bound driver call ran on one OS thread.
func TestContextIsThreadBound(t *testing.T) {
	f := cudatest.New()
	_, c := f.Open(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				b, err := c.Upload([]byte{byte(g), byte(i)})
				if err != nil {
					errs <- err
					return
				}
				out := make([]byte, 2)
				if err := c.CopyDtoH(out, b.Ptr); err != nil || out[0] != byte(g) || out[1] != byte(i) {
					errs <- fmt.Errorf("goroutine %d: %v %v", g, out, err)
				}
				if err := b.Free(); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	th := f.Threads()
	if len(th) != 1 {
		t.Fatalf("context calls ran on %d OS threads: %v", len(th), th)
	}
	for _, n := range th {
		if n < 16*20*4 {
			t.Errorf("only %d bound calls recorded", n)
		}
	}
}

func TestCloseReleasesContext(t *testing.T) {
	f := cudatest.New()
	d, err := cuda.LoadDriver(f.Opener())
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if f.PrimaryContextRefs() != 0 {
		t.Errorf("primary context refs %d after Close", f.PrimaryContextRefs())
	}
	if _, err := c.Alloc(16); !errors.Is(err, cuda.ErrClosed) {
		t.Errorf("Alloc after Close: %v", err)
	}
}

func loadKernel(t *testing.T, c *cuda.Context, name string) *cuda.Function {
	t.Helper()
	m, err := c.LoadModule([]byte(cudatest.ImageMagic + "module"))
	if err != nil {
		t.Fatal(err)
	}
	fn, err := m.Function(name)
	if err != nil {
		t.Fatal(err)
	}
	return fn
}

// TestLaunchPacksArguments runs a simulated axpy kernel: the driver reads
// each parameter through the kernelParams pointers, so a packing mistake
// shows up as a wrong result.
func TestLaunchPacksArguments(t *testing.T) {
	f := cudatest.New()
	f.Kernels["axpy"] = cudatest.Kernel{
		ArgSizes: []int{8, 4, 8, 4, 8},
		Run: func(l *cudatest.Launch, mem *cudatest.Memory) error {
			y, n, x, alpha := cudatest.ArgPtr(l.Args[0]), cudatest.ArgI32(l.Args[1]), cudatest.ArgPtr(l.Args[2]), cudatest.ArgF32(l.Args[3])
			yb, err := mem.Bytes(y, 4*int(n))
			if err != nil {
				return err
			}
			xb, err := mem.Bytes(x, 4*int(n))
			if err != nil {
				return err
			}
			for i := range int(n) {
				xv := math.Float32frombits(binary.LittleEndian.Uint32(xb[4*i:]))
				yv := math.Float32frombits(binary.LittleEndian.Uint32(yb[4*i:]))
				binary.LittleEndian.PutUint32(yb[4*i:], math.Float32bits(alpha*xv+yv))
			}
			return nil
		},
	}
	_, c := f.Open(t)
	fn := loadKernel(t, c, "axpy")
	const n = 37
	xs, ys := make([]byte, 4*n), make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(xs[4*i:], math.Float32bits(float32(i)))
		binary.LittleEndian.PutUint32(ys[4*i:], math.Float32bits(1))
	}
	x, _ := c.Upload(xs)
	y, _ := c.Upload(ys)
	defer x.Free()
	defer y.Free()
	args := new(cuda.Args).Ptr(y.Ptr).I32(n).Ptr(x.Ptr).F32(2.5).U64(0xfeedface)
	if err := fn.SetMaxDynamicSharedMemory(100 << 10); err != nil {
		t.Fatal(err)
	}
	cfg := cuda.LaunchConfig{Grid: cuda.Dim3{X: 4, Y: 2}, Block: cuda.Dim3{X: 128}, SharedMem: 100 << 10}
	if err := c.Launch(fn, cfg, args); err != nil {
		t.Fatal(err)
	}
	cfg.Cluster = cuda.Dim3{X: 2}
	if err := c.Launch(fn, cfg, args); err != nil {
		t.Fatal(err)
	}
	if err := c.Synchronize(); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 4*n)
	if err := c.CopyDtoH(out, y.Ptr); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if got, want := math.Float32frombits(binary.LittleEndian.Uint32(out[4*i:])), 1+2*2.5*float32(i); got != want {
			t.Fatalf("y[%d] = %v, want %v", i, got, want)
		}
	}
	ls := f.Launches()
	if len(ls) != 2 {
		t.Fatalf("%d launches", len(ls))
	}
	if l := ls[0]; l.Ex || l.Grid != [3]uint32{4, 2, 1} || l.Block != [3]uint32{128, 1, 1} || l.SharedMem != 100<<10 || l.Cluster != [3]uint32{1, 1, 1} {
		t.Errorf("plain launch %+v", l)
	}
	if l := ls[1]; !l.Ex || l.Cluster != [3]uint32{2, 1, 1} || l.Grid != [3]uint32{4, 2, 1} || l.SharedMem != 100<<10 {
		t.Errorf("cluster launch %+v", l)
	}
	if got := binary.LittleEndian.Uint64(ls[0].Args[4]); got != 0xfeedface {
		t.Errorf("fifth argument %#x", got)
	}
	// Bad configurations are refused before the driver is called.
	for name, bad := range map[string]cuda.LaunchConfig{
		"empty grid":         {Block: cuda.Dim3{X: 32}},
		"too many threads":   {Grid: cuda.Dim3{X: 1}, Block: cuda.Dim3{X: 1024, Y: 2}},
		"grid not multiple":  {Grid: cuda.Dim3{X: 3}, Block: cuda.Dim3{X: 32}, Cluster: cuda.Dim3{X: 2}},
		"negative shared":    {Grid: cuda.Dim3{X: 1}, SharedMem: -1},
		"nil function (nil)": {},
	} {
		fnArg := fn
		if strings.HasSuffix(name, "(nil)") {
			fnArg = nil
		}
		if err := c.Launch(fnArg, bad, args); !errors.Is(err, cuda.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(f.Launches()) != 2 {
		t.Error("a refused launch reached the driver")
	}
}

func TestArgsLayout(t *testing.T) {
	var tm cuda.TensorMap
	for i := range tm {
		tm[i] = byte(255 - i)
	}
	a := new(cuda.Args).I32(-3).Ptr(0x1122334455667788).F32(1.5).TensorMap(&tm).U32(7).F64(-2)
	offs, buf := a.Layout()
	if want := []int{0, 8, 16, 64, 192, 200}; !slices.Equal(offs, want) {
		t.Fatalf("offsets %v, want %v", offs, want)
	}
	if len(buf) != 208 || a.Len() != 6 {
		t.Fatalf("buffer %d bytes, %d args", len(buf), a.Len())
	}
	if int32(binary.LittleEndian.Uint32(buf[0:])) != -3 || binary.LittleEndian.Uint64(buf[8:]) != 0x1122334455667788 ||
		math.Float32frombits(binary.LittleEndian.Uint32(buf[16:])) != 1.5 || !slices.Equal(buf[64:192], tm[:]) ||
		binary.LittleEndian.Uint32(buf[192:]) != 7 || math.Float64frombits(binary.LittleEndian.Uint64(buf[200:])) != -2 {
		t.Errorf("packed bytes wrong: % x", buf)
	}
	wantKinds := []cuda.ArgKind{cuda.ArgI32, cuda.ArgPtr, cuda.ArgF32, cuda.ArgTensorMap, cuda.ArgU32, cuda.ArgF64}
	if !slices.Equal(a.Kinds(), wantKinds) {
		t.Errorf("kinds %v", a.Kinds())
	}
	if cuda.ArgTensorMap.String() != "tensormap" || cuda.ArgKind(99).String() != "ArgKind(99)" {
		t.Error("ArgKind.String")
	}
}

func TestStreamsAndEvents(t *testing.T) {
	f := cudatest.New()
	_, c := f.Open(t)
	s, err := c.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	start, _ := c.NewEvent()
	stop, _ := c.NewEvent()
	for _, step := range []func() error{
		func() error { return start.Record(s) },
		func() error { return stop.Record(s) },
		stop.Synchronize,
		s.Synchronize,
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := stop.Elapsed(start)
	if err != nil || ms != 1.5 {
		t.Fatalf("Elapsed = %v, %v", ms, err)
	}
	for _, destroy := range []func() error{start.Destroy, stop.Destroy, s.Destroy} {
		if err := destroy(); err != nil {
			t.Fatal(err)
		}
	}
	if f.Calls("cuEventRecord") != 2 || f.Calls("cuStreamDestroy_v2") != 1 {
		t.Errorf("calls: record %d, stream destroy %d", f.Calls("cuEventRecord"), f.Calls("cuStreamDestroy_v2"))
	}
}

func TestEncodeTiled(t *testing.T) {
	f := cudatest.New()
	d, _ := f.Open(t)
	m := cuda.TiledTensorMap{
		DataType: cuda.TMAUint8, Base: 0x7f0000001000,
		Dims: []uint64{7168, 4096}, Strides: []uint64{7168}, Box: []uint32{128, 64},
		Swizzle: cuda.Swizzle128B, L2Promotion: 2,
	}
	tm, err := d.EncodeTiled(m)
	if err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint64(tm[:]) != 0x7f0000001000 || tm[127] != 127 {
		t.Errorf("descriptor bytes not copied back")
	}
	want := []uint64{0, 2, 0x7f0000001000, 7168, 4096, 7168, 128, 64, 1, 1, 0, 3, 2, 0}
	if got := f.TensorMapArgs(); !slices.Equal(got, want) {
		t.Errorf("driver saw %v, want %v", got, want)
	}
	bad := func(mut func(*cuda.TiledTensorMap)) cuda.TiledTensorMap {
		b := m
		b.Dims, b.Strides, b.Box = slices.Clone(m.Dims), slices.Clone(m.Strides), slices.Clone(m.Box)
		mut(&b)
		return b
	}
	for name, b := range map[string]cuda.TiledTensorMap{
		"Base":     bad(func(b *cuda.TiledTensorMap) { b.Base += 8 }),
		"Strides":  bad(func(b *cuda.TiledTensorMap) { b.Strides[0] = 7000 }),
		"Box":      bad(func(b *cuda.TiledTensorMap) { b.Box[1] = 300 }),
		"Box[0]":   bad(func(b *cuda.TiledTensorMap) { b.Box[0] = 8 }),
		"rank":     bad(func(b *cuda.TiledTensorMap) { b.Dims = append(b.Dims, 1, 1, 1, 1) }),
		"DataType": bad(func(b *cuda.TiledTensorMap) { b.DataType = 42 }),
	} {
		if _, err := d.EncodeTiled(b); !errors.Is(err, cuda.ErrInvalid) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestNVRTCFake(t *testing.T) {
	f := cudatest.New()
	n := f.NVRTC(t)
	if maj, min := n.Version(); maj != 13 || min != 0 || n.Path() != "libnvrtc.so.13" {
		t.Errorf("version %d.%d path %s", maj, min, n.Path())
	}
	out, err := n.Compile(cuda.Program{
		Name: "k.cu", Source: "template <int N> __global__ void k() {}",
		Options:         []string{"--gpu-architecture=sm_90a", "-default-device"},
		NameExpressions: []string{"k<4>", "k<8>"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out.Image), cudatest.ImageMagic+"--gpu-architecture=sm_90a -default-device\n") {
		t.Errorf("image %q", out.Image)
	}
	if out.Lowered["k<4>"] != "_fake_k_4" || out.Lowered["k<8>"] != "_fake_k_8" {
		t.Errorf("lowered %v", out.Lowered)
	}
	_, err = n.Compile(cuda.Program{Name: "bad.cu", Source: "#error boom\n"})
	var ce *cuda.Error
	if !errors.As(err, &ce) || ce.Func != "nvrtcCompileProgram" || ce.Name != "NVRTC_ERROR_COMPILATION" || !strings.Contains(ce.Log, "error: #error boom") {
		t.Fatalf("compile error %#v", err)
	}
	if errors.Is(err, cuda.ErrUnavailable) {
		t.Error("a compile error must not read as ErrUnavailable")
	}
	ptx, err := n.Compile(cuda.Program{Source: "__global__ void k() {}", PTX: true})
	if err != nil || ptx.Image[len(ptx.Image)-1] != 0 {
		t.Fatalf("PTX output %q, %v", ptx.Image, err)
	}
	if _, err := n.Compile(cuda.Program{}); !errors.Is(err, cuda.ErrInvalid) {
		t.Errorf("empty source: %v", err)
	}
}

// TestSystemDriverHere checks the real loader on this machine: with a GPU
// it opens device 0; without one it answers ErrUnavailable, never crashes.
func TestSystemDriverHere(t *testing.T) {
	c, err := cuda.Open(0)
	if err != nil {
		if !errors.Is(err, cuda.ErrUnavailable) {
			t.Fatalf("Open(0) without a usable GPU must wrap ErrUnavailable: %v", err)
		}
		t.Logf("no GPU here: %v", err)
		return
	}
	defer c.Close()
	t.Logf("GPU: %+v", c.Info())
}

// FuzzEncodeTiled: any descriptor is refused with ErrInvalid or reaches the
// (fake) driver with the fields it was given.
func FuzzEncodeTiled(f *testing.F) {
	f.Add(uint32(0), uint64(0x1000), uint64(7168), uint64(4096), uint64(7168), uint32(128), uint32(64), uint32(3), uint8(2))
	f.Add(uint32(9), uint64(0x1008), uint64(0), uint64(1), uint64(17), uint32(0), uint32(300), uint32(9), uint8(6))
	fake := cudatest.New()
	d, err := cuda.LoadDriver(fake.Opener())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, dt uint32, base, d0, d1, stride uint64, b0, b1, swz uint32, rank uint8) {
		m := cuda.TiledTensorMap{DataType: cuda.TensorMapDataType(dt), Base: cuda.DevicePtr(base), Swizzle: cuda.TensorMapSwizzle(swz)}
		for i := range int(rank % 7) {
			m.Dims = append(m.Dims, []uint64{d0, d1}[i%2])
			m.Box = append(m.Box, []uint32{b0, b1}[i%2])
			if i > 0 {
				m.Strides = append(m.Strides, stride*uint64(i))
			}
		}
		tm, err := d.EncodeTiled(m)
		if err != nil {
			if !errors.Is(err, cuda.ErrInvalid) {
				t.Fatalf("%+v: %v", m, err)
			}
			return
		}
		if binary.LittleEndian.Uint64(tm[:]) != base {
			t.Fatal("descriptor not from the driver")
		}
	})
}

// BenchmarkDriverCall compares a driver call made directly (anchor) with
// the same kind of call queued through a Context's locked goroutine, both
// against the fake driver: the ratio is the queue's cost per call.
func BenchmarkDriverCall(b *testing.B) {
	f := cudatest.New()
	d, err := cuda.LoadDriver(f.Opener())
	if err != nil {
		b.Fatal(err)
	}
	ctx, err := d.Open(0)
	if err != nil {
		b.Fatal(err)
	}
	defer ctx.Close()
	var direct float64
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			if _, err := d.DeviceCount(); err != nil {
				b.Fatal(err)
			}
		}
		direct = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("context", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := ctx.MemInfo(); err != nil {
				b.Fatal(err)
			}
		}
		if direct > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/direct, "x-direct")
		}
	})
}
