package cuda_test

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/cuda"
	"github.com/fireflyer-go/fireflyer/cuda/cudatest"
)

// The TestGPU* tests need a CUDA driver, a GPU and NVRTC; elsewhere they
// skip saying why (FIREFLYER_REQUIRE_GPU=1 makes that a failure).

func TestGPUDriverBasics(t *testing.T) {
	c := cudatest.RequireGPU(t)
	info := c.Info()
	t.Logf("device %+v (arch %s)", info, info.Arch())
	if info.Name == "" || info.Major < 7 || info.SMs <= 0 || info.TotalMem == 0 || info.SharedMemOptin < 48<<10 {
		t.Fatalf("implausible device info %+v", info)
	}
	free, total, err := c.MemInfo()
	if err != nil || free == 0 || free > total {
		t.Fatalf("MemInfo %d/%d %v", free, total, err)
	}
	src := make([]byte, 1<<20+3)
	for i := range src {
		src[i] = byte(i*31 + 7)
	}
	a, err := c.Upload(src)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Free()
	b, err := c.Alloc(len(src))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	if err := c.CopyDtoD(b.Ptr, a.Ptr, len(src)); err != nil {
		t.Fatal(err)
	}
	if err := c.Memset(b.Ptr.Add(100), 0x5A, 50); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(src))
	if err := c.CopyDtoH(got, b.Ptr); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(src)
	for i := 100; i < 150; i++ {
		want[i] = 0x5A
	}
	if !slices.Equal(got, want) {
		t.Fatal("device round trip differs")
	}
	if _, err := c.Alloc(1 << 50); !errors.Is(err, cuda.ErrOutOfMemory) {
		t.Errorf("1 PiB allocation: %v, want ErrOutOfMemory", err)
	}
}

const testKernels = `
extern "C" __global__ void add_one(float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += 1.0f;
}
template <int S>
__global__ void scale(float* x, int n, float bias) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = x[i] * S + bias;
}
// cluster_rank writes each block's rank within its cluster (PTX %cluster_ctarank, sm_90).
extern "C" __global__ void cluster_rank(unsigned* out) {
  unsigned r = 0xFFFFFFFEu;
#if __CUDA_ARCH__ >= 900
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
#endif
  if (threadIdx.x == 0) out[blockIdx.x] = r;
}
`

// compileLoad compiles p with n and loads the image on c; the module is
// unloaded when the test ends. Any error fails t.
func compileLoad(t *testing.T, c *cuda.Context, n *cuda.NVRTC, p cuda.Program) (*cuda.Module, *cuda.Compiled) {
	t.Helper()
	out, err := n.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.LoadModule(out.Image)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Unload() })
	return m, out
}

func TestGPUCompileAndLaunch(t *testing.T) {
	c := cudatest.RequireGPU(t)
	n := cudatest.RequireNVRTC(t)
	maj, min := n.Version()
	t.Logf("NVRTC %d.%d from %s; driver %d from %s", maj, min, n.Path(), c.Driver().Version(), c.Driver().Path())
	m, out := compileLoad(t, c, n, cuda.Program{
		Name: "test.cu", Source: testKernels,
		Options:         []string{"--gpu-architecture=" + c.Info().Arch(), "-default-device"},
		NameExpressions: []string{"scale<3>"},
	})
	addOne, err := m.Function("add_one")
	if err != nil {
		t.Fatal(err)
	}
	scale, err := m.Function(out.Lowered["scale<3>"])
	if err != nil {
		t.Fatal(err)
	}
	const N = 1000
	host := make([]byte, 4*N)
	for i := range N {
		binary.LittleEndian.PutUint32(host[4*i:], math.Float32bits(float32(i)))
	}
	buf, err := c.Upload(host)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Free()
	start, _ := c.NewEvent()
	stop, _ := c.NewEvent()
	defer start.Destroy()
	defer stop.Destroy()
	s, err := c.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	cfg := cuda.LaunchConfig{Grid: cuda.Dim3{X: 4}, Block: cuda.Dim3{X: 256}, Stream: s}
	args := new(cuda.Args).Ptr(buf.Ptr).I32(N)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(start.Record(s))
	must(c.Launch(addOne, cfg, args))
	cfg.Cluster = cuda.Dim3{X: 2} // through cuLaunchKernelEx
	must(c.Launch(addOne, cfg, args))
	cfg.Cluster = cuda.Dim3{}
	must(c.Launch(scale, cfg, new(cuda.Args).Ptr(buf.Ptr).I32(N).F32(0.5)))
	must(stop.Record(s))
	must(s.Synchronize())
	ms, err := stop.Elapsed(start)
	if err != nil || ms <= 0 || ms > 1000 {
		t.Errorf("elapsed %v ms, %v", ms, err)
	}
	got := make([]byte, 4*N)
	must(c.CopyDtoH(got, buf.Ptr))
	for i := range N {
		if v, want := math.Float32frombits(binary.LittleEndian.Uint32(got[4*i:])), float32(i+2)*3+0.5; v != want {
			t.Fatalf("x[%d] = %v, want %v", i, v, want)
		}
	}

	// Cluster dimensions reach the device: blocks 0..7 in clusters of 4.
	if c.Info().Major >= 9 {
		rank, err := m.Function("cluster_rank")
		if err != nil {
			t.Fatal(err)
		}
		rb, _ := c.Alloc(8 * 4)
		defer rb.Free()
		must(c.Memset(rb.Ptr, 0xFF, 32))
		must(c.Launch(rank, cuda.LaunchConfig{Grid: cuda.Dim3{X: 8}, Block: cuda.Dim3{X: 32}, Cluster: cuda.Dim3{X: 4}}, new(cuda.Args).Ptr(rb.Ptr)))
		must(c.Synchronize())
		rs := make([]byte, 32)
		must(c.CopyDtoH(rs, rb.Ptr))
		for i := range 8 {
			if r := binary.LittleEndian.Uint32(rs[4*i:]); r != uint32(i%4) {
				t.Errorf("block %d cluster rank %d, want %d", i, r, i%4)
			}
		}
	}

	// Real driver and NVRTC errors carry their names and messages.
	_, err = m.Function("no_such_kernel")
	var ce *cuda.Error
	if !errors.As(err, &ce) || ce.Name != "CUDA_ERROR_NOT_FOUND" || ce.Message == "" {
		t.Errorf("missing kernel: %v", err)
	}
	_, err = n.Compile(cuda.Program{Name: "bad.cu", Source: "__global__ void k() { undeclared(); }",
		Options: []string{"--gpu-architecture=" + c.Info().Arch()}})
	if !errors.As(err, &ce) || ce.Name != "NVRTC_ERROR_COMPILATION" || !strings.Contains(ce.Log, "undeclared") {
		t.Errorf("compile error: %v", err)
	}
}

// tmaKernel copies one 32x128-byte box per block from the tensor map's
// tensor to out through the bulk tensor copy engine (cp.async.bulk.tensor,
// completing on an mbarrier), proving that a CUtensorMap packed by
// Args.TensorMap reaches the kernel intact as a __grid_constant__ parameter.
const tmaKernel = `
struct alignas(64) TmaDesc { unsigned long long v[16]; };

__device__ __forceinline__ unsigned smem_u32(const void* p) {
  unsigned r;
  asm volatile("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(r) : "l"(p));
  return r;
}

extern "C" __global__ void tma_copy(const __grid_constant__ TmaDesc desc, unsigned char* out, int cols) {
  __shared__ alignas(128) unsigned char tile[32 * 128];
  __shared__ alignas(8) unsigned long long bar;
  const unsigned tile_a = smem_u32(tile), bar_a = smem_u32(&bar);
  const int x = blockIdx.x * 128, y = blockIdx.y * 32;
  if (threadIdx.x == 0) {
    asm volatile("mbarrier.init.shared.b64 [%0], 1;" :: "r"(bar_a));
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(bar_a), "r"(32 * 128) : "memory");
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
                 :: "r"(tile_a), "l"((unsigned long long)&desc), "r"(x), "r"(y), "r"(bar_a) : "memory");
  }
  asm volatile("{\n .reg .pred P1;\n WAIT:\n mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], 0;\n @P1 bra DONE;\n bra WAIT;\n DONE:\n }" :: "r"(bar_a) : "memory");
  for (int i = threadIdx.x; i < 32 * 128; i += blockDim.x) {
    out[(long long)(y + i / 128) * cols + x + i % 128] = tile[i];
  }
}
`

func TestGPUTensorMap(t *testing.T) {
	c := cudatest.RequireGPU(t)
	if !c.Driver().Has("cuTensorMapEncodeTiled") {
		t.Skip("driver lacks cuTensorMapEncodeTiled")
	}
	b, err := c.Alloc(4096 * 7168)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	tm, err := c.Driver().EncodeTiled(cuda.TiledTensorMap{
		DataType: cuda.TMAUint8, Base: b.Ptr, Dims: []uint64{7168, 4096}, Strides: []uint64{7168},
		Box: []uint32{128, 64}, Swizzle: cuda.Swizzle128B,
	})
	if err != nil {
		t.Fatal(err)
	}
	if *tm == (cuda.TensorMap{}) {
		t.Error("descriptor is all zero")
	}
	// The driver rejects a 128B swizzle with a 256-byte inner box; this
	// package leaves that rule to the driver.
	_, err = c.Driver().EncodeTiled(cuda.TiledTensorMap{
		DataType: cuda.TMAUint8, Base: b.Ptr, Dims: []uint64{7168, 4096}, Strides: []uint64{7168},
		Box: []uint32{256, 64}, Swizzle: cuda.Swizzle128B,
	})
	var ce *cuda.Error
	if !errors.As(err, &ce) || ce.Func != "cuTensorMapEncodeTiled" {
		t.Errorf("oversized swizzled box: %v", err)
	}

	if c.Info().Major < 9 {
		t.Skip("TMA copies need sm_90")
	}
	n := cudatest.RequireNVRTC(t)
	m, _ := compileLoad(t, c, n, cuda.Program{Name: "tma.cu", Source: tmaKernel, Options: []string{"--gpu-architecture=" + c.Info().Arch(), "-std=c++17"}})
	fn, err := m.Function("tma_copy")
	if err != nil {
		t.Fatal(err)
	}
	const rows, cols = 64, 256
	src := make([]byte, rows*cols)
	for i := range src {
		src[i] = byte(i*7 + i/cols)
	}
	in, err := c.Upload(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Free()
	dst, err := c.Alloc(rows * cols)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Free()
	if err := c.Memset(dst.Ptr, 0, rows*cols); err != nil {
		t.Fatal(err)
	}
	desc, err := c.Driver().EncodeTiled(cuda.TiledTensorMap{
		DataType: cuda.TMAUint8, Base: in.Ptr, Dims: []uint64{cols, rows}, Strides: []uint64{cols}, Box: []uint32{128, 32},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The descriptor is the kernel's first parameter; Args keeps it 64-byte
	// aligned as CUtensorMap requires.
	args := new(cuda.Args).TensorMap(desc).Ptr(dst.Ptr).I32(cols)
	if err := c.Launch(fn, cuda.LaunchConfig{Grid: cuda.Dim3{X: cols / 128, Y: rows / 32}, Block: cuda.Dim3{X: 128}}, args); err != nil {
		t.Fatal(err)
	}
	if err := c.Synchronize(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, rows*cols)
	if err := c.CopyDtoH(got, dst.Ptr); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, src) {
		t.Fatal("TMA copy differs from the source")
	}
}
