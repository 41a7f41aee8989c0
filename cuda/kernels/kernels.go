package kernels

import (
	"embed"
	"fmt"
	"sort"

	"github.com/fireflyer-go/fireflyer/cuda"
	"github.com/fireflyer-go/fireflyer/cuda/jit"
)

//go:embed *.cu
var sources embed.FS

// Source returns the embedded CUDA C++ source file name (e.g.
// "fp8_gemm.cu").
func Source(name string) (jit.Source, error) {
	b, err := sources.ReadFile(name)
	if err != nil {
		return jit.Source{}, fmt.Errorf("kernels: no embedded source %q", name)
	}
	return jit.Source{Name: name, Code: string(b)}, nil
}

// SourceNames lists the embedded source files.
func SourceNames() []string {
	ents, _ := sources.ReadDir(".")
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func mustSource(name string) jit.Source {
	s, err := Source(name)
	if err != nil {
		panic(err) // the files are embedded at build time
	}
	return s
}

// Set runs Fireflyer's kernels on one CUDA context, compiling each
// instance on first use through a JIT compiler (or its disk cache).
type Set struct {
	ctx  *cuda.Context
	comp *jit.Compiler
	arch string
}

// New returns a Set for ctx. comp may be nil to use jit.System(); the
// device's architecture (sm_90a on Hopper) is the compile target.
func New(ctx *cuda.Context, comp *jit.Compiler) (*Set, error) {
	if ctx == nil {
		return nil, fmt.Errorf("%w: nil context", cuda.ErrInvalid)
	}
	if comp == nil {
		c, err := jit.System()
		if err != nil {
			return nil, err
		}
		comp = c
	}
	return &Set{ctx: ctx, comp: comp, arch: ctx.Info().Arch()}, nil
}

// Context returns the Set's context.
func (s *Set) Context() *cuda.Context { return s.ctx }

func (s *Set) load(r jit.Request) (*cuda.Function, error) {
	r.Arch = s.arch
	return s.comp.Load(s.ctx, r)
}

// Instances lists every kernel instance the Set can launch, for Warmup and
// for the GPU check's compile step.
func Instances() []jit.Request {
	var rs []jit.Request
	for _, bf16 := range []bool{true, false} {
		rs = append(rs, gemmRequest(bf16))
	}
	rs = append(rs, mlaPartialRequest(), mlaCombineRequest())
	return rs
}

// Warmup compiles (or reads from the cache) and loads every instance, so
// later calls pay no compilation, as DeepGEMM's warm-up does.
func (s *Set) Warmup() error {
	for _, r := range Instances() {
		if _, err := s.load(r); err != nil {
			return err
		}
	}
	return nil
}
