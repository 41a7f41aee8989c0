// Package kernels holds every SIMD kernel of the module, in the model of
// gonum's internal/asm: the float32 GEMM micro-kernels, FP8 (E4M3)
// decoders and the FP4 (E2M1) row decoder behind
// gemm/cpu, the attention kernels behind mla's cpu backend
// (a strided float32 GEMM, BF16/F16 widening, dot/axpy/scal, a vector exp2,
// fused BF16 QK and PV), the BF16 combine kernels of ep and the streaming
// (non-temporal) copy of its shared-memory puts.
//
// It sits in the basement: it imports only tensor (whose scalar codecs and
// E4M3 table the pure-Go kernels use, so that the tree has one of each),
// internal/platform (the one place that reads CPU features) and
// internal/par (the one parallel-for).
//
// Kernels come in four levels: AVX-512 (F, BW and DQ) and AVX2 (with AVX
// and FMA) on amd64, NEON (Advanced SIMD) on arm64, and generic (pure Go). There is no mutable package state: Select
// checks a level against a feature set and returns a Set, an immutable
// value whose methods run that level's kernels. Backends hold their own Set
// (chosen through their options), so two backends on different levels can
// run concurrently. Best returns the Set of the best level this machine
// runs.
//
// The amd64 assembly is written by the generator in gen/ (go generate
// ./internal/kernels); TestGenerated checks that the committed files equal
// its output. The arm64 assembly (*_arm64.s) is written by hand, with the
// instructions the Go assembler lacks as WORD encodings named beside them.
// Under the noasm build tag, or on another architecture, only the generic
// level exists; the generic kernels are the
// pure-Go twins of the assembly and the tests compare each level with them.
package kernels

//go:generate go run ./gen -dir .

import (
	"errors"
	"fmt"

	"github.com/fireflyer-go/fireflyer/internal/platform"
)

// Level is an instruction-set level of the kernels.
type Level uint8

// The levels, lowest first.
const (
	// Generic is the pure-Go kernels: every build and machine has them.
	Generic Level = iota
	// AVX2 is the AVX2+FMA assembly (needs AVX, AVX2 and FMA; the F16
	// widening also uses F16C where present).
	AVX2
	// AVX512 is the AVX-512 assembly (needs AVX-512 F, BW and DQ, plus
	// everything AVX2 needs: the BF16 combine kernels exist only as AVX2).
	AVX512
	// NEON is the arm64 Advanced SIMD (ASIMD) assembly: every arm64 CPU
	// has it. It is not above AVX512 in any sense but its number: the
	// levels of one architecture never run on the other.
	NEON
)

// String returns the level's name: "go", "avx2", "avx512" or "neon".
func (l Level) String() string {
	switch l {
	case Generic:
		return "go"
	case AVX2:
		return "avx2"
	case AVX512:
		return "avx512"
	case NEON:
		return "neon"
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// Errors of ParseLevel, Select and ForName.
var (
	// ErrUnknownLevel: a level name other than avx512, avx2, neon, go or
	// generic.
	ErrUnknownLevel = errors.New("kernels: unknown kernel level (want avx512, avx2, neon or go)")
	// ErrUnsupported: the CPU or the build lacks an extension the level needs.
	ErrUnsupported = errors.New("kernels: kernel level not supported by this CPU or build")
)

// ParseLevel returns the level named s: "avx512", "avx2", "neon", or "go"
// (alias "generic"). Other names give an error wrapping ErrUnknownLevel.
func ParseLevel(s string) (Level, error) {
	switch s {
	case "avx512":
		return AVX512, nil
	case "avx2":
		return AVX2, nil
	case "neon":
		return NEON, nil
	case "go", "generic":
		return Generic, nil
	}
	return Generic, fmt.Errorf("%w: %q", ErrUnknownLevel, s)
}

// Supports reports whether level l can run on a CPU with features f in this
// build: AVX512 needs AVX-512 F, BW (VPCMPEQB into a mask register, KORQ,
// VPMOVZXWD on zmm) and DQ (VEXTRACTF32X8) on top of what AVX2 needs; AVX2
// needs AVX, AVX2 and FMA; both need the amd64 assembly (amd64 without the
// noasm tag). NEON needs an arm64 CPU with ASIMD and the arm64 assembly
// (arm64 without the noasm tag). Generic always runs.
func Supports(l Level, f platform.CPUFeatures) bool {
	switch l {
	case Generic:
		return true
	case AVX2:
		return asmBuild && f.Arch == "amd64" && f.AVX && f.AVX2 && f.FMA
	case AVX512:
		return Supports(AVX2, f) && f.AVX512F && f.AVX512BW && f.AVX512DQ
	case NEON:
		return neonBuild && f.Arch == "arm64" && f.NEON
	}
	return false
}

// BestLevel returns the highest level that runs on features f.
func BestLevel(f platform.CPUFeatures) Level {
	for _, l := range []Level{AVX512, AVX2, NEON} {
		if Supports(l, f) {
			return l
		}
	}
	return Generic
}

// Set is an immutable selection of kernels: one level plus the optional
// extensions its kernels use (F16C). The zero Set is the generic level. A
// Set is a small value, safe to copy and to use from any number of
// goroutines.
type Set struct {
	level Level
	f16c  bool
}

// Select returns the Set of level l for a CPU with features f, or an error
// wrapping ErrUnsupported if l cannot run there (see Supports).
func Select(l Level, f platform.CPUFeatures) (Set, error) {
	if l > NEON {
		return Set{}, fmt.Errorf("%w: %v", ErrUnknownLevel, l)
	}
	if !Supports(l, f) {
		return Set{}, fmt.Errorf("%w: %s needs %s (this CPU has %v)", ErrUnsupported, l, needs(l), f.Names())
	}
	return Set{level: l, f16c: (l == AVX2 || l == AVX512) && f.F16C}, nil
}

func needs(l Level) string {
	if l == NEON {
		if !neonBuild {
			return "an arm64 CPU and the arm64 assembly kernels, which this build (noasm tag or not arm64) lacks"
		}
		return "an arm64 CPU with ASIMD"
	}
	if !asmBuild {
		return "the assembly kernels, which this build (noasm tag or not amd64) lacks"
	}
	if l == AVX512 {
		return "AVX-512F, AVX-512BW, AVX-512DQ, AVX2 and FMA"
	}
	return "AVX, AVX2 and FMA"
}

// Best returns the Set of the best level the running CPU supports.
func Best() Set {
	f := platform.CPU()
	s, _ := Select(BestLevel(f), f)
	return s
}

// ForName returns the Set named by a backend option: "" for Best, else a
// level name as ParseLevel takes it, checked against the running CPU.
// Errors wrap ErrUnknownLevel or ErrUnsupported.
func ForName(name string) (Set, error) {
	if name == "" {
		return Best(), nil
	}
	l, err := ParseLevel(name)
	if err != nil {
		return Set{}, err
	}
	return Select(l, platform.CPU())
}

// Level returns the Set's level.
func (s Set) Level() Level { return s.level }

// String returns the level's name ("avx512", "avx2", "neon" or "go").
func (s Set) String() string { return s.level.String() }
