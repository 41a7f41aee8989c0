package kernels

import (
	"fmt"
	"strconv"

	"github.com/fireflyer-go/fireflyer/cuda"
	"github.com/fireflyer-go/fireflyer/cuda/jit"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// MLA decode geometry (DeepSeek-V3, FlashMLA): one latent KV head of 576
// (512 no-position + 64 RoPE) dims, V = the first 512, pages of 64 tokens.
const (
	MLAHeadDimQK = 576
	MLAHeadDimV  = 512
	MLAPageSize  = 64
	mlaWarps     = 8 // query rows per partial block
)

func mlaPartialRequest() jit.Request {
	return jit.Request{
		Source: mustSource("mla_decode.cu"),
		Instance: jit.Instance{Name: "mla_decode_partial", Args: []string{
			strconv.Itoa(MLAHeadDimQK), strconv.Itoa(MLAHeadDimV), strconv.Itoa(MLAPageSize)}},
	}
}

func mlaCombineRequest() jit.Request {
	return jit.Request{
		Source:   mustSource("mla_decode.cu"),
		Instance: jit.Instance{Name: "mla_decode_combine", Args: []string{strconv.Itoa(MLAHeadDimV)}},
	}
}

// MLADecode describes one MLA decode step over a paged cache, split along
// the keys into NumSplits parts whose results are merged by log-sum-exp.
// All pointers are device addresses.
//
// Upstream: deepseek-ai/FlashMLA flash_mla_with_kvcache (BF16, page size
// 64, d = 576, dv = 512) with its split-KV and combine kernels.
type MLADecode struct {
	Batch, SeqQ, HeadsQ int
	// Q is [Batch, SeqQ, HeadsQ, 576] BF16.
	Q cuda.DevicePtr
	// KV is the paged cache [pages, 64, 1, 576] BF16, contiguous; V is its
	// first 512 columns.
	KV cuda.DevicePtr
	// BlockTable is [Batch, MaxPages] int32 page indices into KV.
	BlockTable cuda.DevicePtr
	MaxPages   int
	// CacheSeqlens is [Batch] int32; each at most MaxPages*64.
	CacheSeqlens cuda.DevicePtr
	SoftmaxScale float32 // usually 1/sqrt(576)
	// Causal masks query sq to keys t < seqlen - (SeqQ-1-sq) when SeqQ > 1.
	Causal bool
	// NumSplits is the number of key splits (>= 1); see SuggestSplits.
	NumSplits int
	// Workspace is float32 scratch of at least MLAWorkspaceBytes bytes.
	Workspace cuda.DevicePtr
	// Out is [Batch, SeqQ, HeadsQ, 512] BF16.
	Out cuda.DevicePtr
	// LSE is [Batch, HeadsQ, SeqQ] float32, natural log; +Inf for a row
	// that sees no key.
	LSE    cuda.DevicePtr
	Stream *cuda.Stream
}

// MLAWorkspaceBytes returns the workspace the split outputs need:
// batch·splits·seqQ·headsQ·(512+1) float32 values.
func MLAWorkspaceBytes(batch, seqQ, headsQ, splits int) int {
	return batch * splits * seqQ * headsQ * (MLAHeadDimV + 1) * 4
}

// SuggestSplits picks a split count that gives the device about two
// blocks per multiprocessor, at most one split per page.
func SuggestSplits(sms, batch, seqQ, headsQ, maxPages int) int {
	blocks := batch * ((seqQ*headsQ + mlaWarps - 1) / mlaWarps)
	if blocks <= 0 || maxPages <= 0 {
		return 1
	}
	s := (2*sms + blocks - 1) / blocks
	return max(1, min(s, maxPages, 64))
}

func (p MLADecode) validate() error {
	switch {
	case p.Batch <= 0 || p.SeqQ <= 0 || p.HeadsQ <= 0:
		return fmt.Errorf("%w: MLADecode Batch, SeqQ, HeadsQ = %d, %d, %d must be positive", tensor.ErrShape, p.Batch, p.SeqQ, p.HeadsQ)
	case p.Batch > 65535 || p.NumSplits > 65535:
		return fmt.Errorf("%w: MLADecode Batch %d / NumSplits %d above 65535", tensor.ErrShape, p.Batch, p.NumSplits)
	case p.NumSplits <= 0:
		return fmt.Errorf("%w: MLADecode.NumSplits %d must be positive", tensor.ErrShape, p.NumSplits)
	case p.MaxPages <= 0:
		return fmt.Errorf("%w: MLADecode.MaxPages %d must be positive", tensor.ErrShape, p.MaxPages)
	case p.SeqQ*p.HeadsQ > 1<<24:
		return fmt.Errorf("%w: MLADecode SeqQ*HeadsQ = %d too large", tensor.ErrShape, p.SeqQ*p.HeadsQ)
	}
	for _, f := range []struct {
		name  string
		p     cuda.DevicePtr
		align cuda.DevicePtr
	}{{"Q", p.Q, 16}, {"KV", p.KV, 16}, {"BlockTable", p.BlockTable, 4}, {"CacheSeqlens", p.CacheSeqlens, 4},
		{"Workspace", p.Workspace, 16}, {"Out", p.Out, 2}, {"LSE", p.LSE, 4}} {
		if f.p == 0 || f.p%f.align != 0 {
			return fmt.Errorf("%w: MLADecode.%s = %#x must be a non-null device pointer aligned to %d bytes", cuda.ErrInvalid, f.name, uint64(f.p), f.align)
		}
	}
	return nil
}

func (p MLADecode) rows() int { return p.SeqQ * p.HeadsQ }

// workspace splits Workspace into the partial outputs and partial LSEs.
func (p MLADecode) workspace() (oPart, lsePart cuda.DevicePtr) {
	return p.Workspace, p.Workspace.Add(p.Batch * p.NumSplits * p.rows() * MLAHeadDimV * 4)
}

func (p MLADecode) partialArgs() *cuda.Args {
	causal := int32(0)
	if p.Causal {
		causal = 1
	}
	o, l := p.workspace()
	return new(cuda.Args).Ptr(o).Ptr(l).Ptr(p.Q).Ptr(p.KV).Ptr(p.BlockTable).Ptr(p.CacheSeqlens).
		I32(int32(p.SeqQ)).I32(int32(p.HeadsQ)).I32(int32(p.NumSplits)).I32(int32(p.MaxPages)).
		F32(p.SoftmaxScale).I32(causal)
}

func (p MLADecode) combineArgs() *cuda.Args {
	o, l := p.workspace()
	return new(cuda.Args).Ptr(p.Out).Ptr(p.LSE).Ptr(o).Ptr(l).
		I32(int32(p.SeqQ)).I32(int32(p.HeadsQ)).I32(int32(p.NumSplits))
}

func (p MLADecode) partialConfig() cuda.LaunchConfig {
	return cuda.LaunchConfig{
		Grid:   cuda.Dim3{X: uint32((p.rows() + mlaWarps - 1) / mlaWarps), Y: uint32(p.NumSplits), Z: uint32(p.Batch)},
		Block:  cuda.Dim3{X: 32 * mlaWarps, Y: 1, Z: 1},
		Stream: p.Stream,
	}
}

func (p MLADecode) combineConfig() cuda.LaunchConfig {
	return cuda.LaunchConfig{
		Grid:   cuda.Dim3{X: uint32(p.rows()), Y: uint32(p.Batch), Z: 1},
		Block:  cuda.Dim3{X: 128, Y: 1, Z: 1},
		Stream: p.Stream,
	}
}

// MLADecode launches the split-KV partial kernel and the combine kernel
// (asynchronously on p.Stream).
func (s *Set) MLADecode(p MLADecode) error {
	if err := p.validate(); err != nil {
		return err
	}
	partial, err := s.load(mlaPartialRequest())
	if err != nil {
		return err
	}
	combine, err := s.load(mlaCombineRequest())
	if err != nil {
		return err
	}
	if err := s.ctx.Launch(partial, p.partialConfig(), p.partialArgs()); err != nil {
		return err
	}
	return s.ctx.Launch(combine, p.combineConfig(), p.combineArgs())
}
