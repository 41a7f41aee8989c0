package cuda_test

import (
	"errors"
	"fmt"

	"github.com/fireflyer-go/fireflyer/cuda"
	"github.com/fireflyer-go/fireflyer/cuda/cudatest"
)

// Example drives the whole API against the fake driver from cudatest, so it
// runs anywhere; with a GPU, cuda.Open(0) replaces the first three lines.
func Example() {
	fake := cudatest.New()
	drv, err := cuda.LoadDriver(fake.Opener())
	if err != nil {
		panic(err)
	}
	ctx, err := drv.Open(0)
	if err != nil {
		panic(err)
	}
	defer ctx.Close()
	fmt.Println(ctx.Info().Name, ctx.Info().Arch(), ctx.Info().SMs, "SMs")

	buf, _ := ctx.Upload([]byte("hello, device"))
	defer buf.Free()
	back := make([]byte, buf.Size)
	if err := ctx.CopyDtoH(back, buf.Ptr); err != nil {
		panic(err)
	}
	fmt.Println(string(back))

	_, err = ctx.Alloc(1 << 40) // the fake has 1 GiB
	fmt.Println(err)
	fmt.Println(errors.Is(err, cuda.ErrOutOfMemory))
	// Output:
	// NVIDIA H200 sm_90a 132 SMs
	// hello, device
	// cuda: cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY (out of memory)
	// true
}

func ExampleArgs() {
	args := new(cuda.Args).Ptr(0x7f0000000000).I32(4096).F32(0.5)
	offsets, packed := args.Layout()
	fmt.Println(args.Kinds(), offsets, len(packed), "bytes")
	// Output: [ptr i32 f32] [0 8 12] 16 bytes
}
