package ep

import (
	"math"

	"github.com/fireflyer-go/fireflyer/tensor"
)

// NumScales returns ceil(hidden/tensor.ScaleBlock) = ceil(hidden/128), the
// number of FP8 scales per token (DeepEP's per-token, per-128-channel
// quantization).
func NumScales(hidden int) int { return (hidden + tensor.ScaleBlock - 1) / tensor.ScaleBlock }

// Tokens is a batch of N token rows of Hidden channels, in exactly one of
// two encodings:
//   - BF16: BF16 holds [N][Hidden] values;
//   - FP8: FP8 holds [N][Hidden] e4m3fn values and exactly one of Scales
//     ([N][NumScales(Hidden)] float32, the dequantization multipliers
//     "scale_inv", x ≈ fp8·scale) or ScalesUE8M0 ([N][NumScales(Hidden)]
//     power-of-two exponent bytes, upstream's int32-packed UE8M0 unpacked to
//     one byte per scale) is set.
//
// It mirrors the x argument of deep_ep.Buffer.dispatch (a BF16 tensor or an
// (e4m3 tensor, scales) tuple). Scales are row-major here (upstream accepts
// any strides).
type Tokens struct {
	N, Hidden   int
	BF16        []tensor.BF16
	FP8         []tensor.E4M3
	Scales      []float32
	ScalesUE8M0 []tensor.UE8M0
}

// payload kinds
const (
	kindBF16 uint32 = iota + 1
	kindFP8F32
	kindFP8UE8M0
)

func (x *Tokens) kind() uint32 {
	switch {
	case x.FP8 != nil && x.ScalesUE8M0 != nil:
		return kindFP8UE8M0
	case x.FP8 != nil:
		return kindFP8F32
	}
	return kindBF16
}

// rowBytes is the payload bytes per token and scaleBytes the scale bytes.
func rowBytes(kind uint32, hidden int) int {
	if kind == kindBF16 {
		return 2 * hidden
	}
	return hidden
}

func scaleBytes(kind uint32, hidden int) int {
	switch kind {
	case kindFP8F32:
		return 4 * NumScales(hidden)
	case kindFP8UE8M0:
		return NumScales(hidden)
	}
	return 0
}

// validate checks the shapes of x; name is the argument's name for errors.
func (x *Tokens) validate(name string) error {
	if x.N < 0 {
		return errorf(ErrShape, "%s.N = %d is negative", name, x.N)
	}
	if x.Hidden <= 0 {
		return errorf(ErrShape, "%s.Hidden = %d, want > 0", name, x.Hidden)
	}
	if x.N > math.MaxInt32 || x.Hidden > math.MaxInt32 {
		// N and Hidden travel to the other ranks as uint32
		return errorf(ErrShape, "%s.N = %d, Hidden = %d: each must be below 2^31", name, x.N, x.Hidden)
	}
	if x.N > 0 && x.Hidden > math.MaxInt/x.N {
		return errorf(ErrShape, "%s.N×Hidden = %d×%d overflows int", name, x.N, x.Hidden)
	}
	nh := x.N * x.Hidden
	ns := x.N * NumScales(x.Hidden)
	switch {
	case x.BF16 != nil && x.FP8 != nil:
		return errorf(ErrShape, "%s has both BF16 and FP8 payloads", name)
	case x.BF16 == nil && x.FP8 == nil:
		if nh != 0 {
			return errorf(ErrShape, "%s has no payload (BF16 or FP8) for %d×%d", name, x.N, x.Hidden)
		}
		if x.Scales != nil || x.ScalesUE8M0 != nil {
			return errorf(ErrShape, "%s has scales without an FP8 payload", name)
		}
	case x.BF16 != nil:
		if len(x.BF16) != nh {
			return errorf(ErrShape, "len(%s.BF16) = %d, want N×Hidden = %d×%d", name, len(x.BF16), x.N, x.Hidden)
		}
		if x.Scales != nil || x.ScalesUE8M0 != nil {
			return errorf(ErrShape, "%s has scales with a BF16 payload", name)
		}
	default:
		if len(x.FP8) != nh {
			return errorf(ErrShape, "len(%s.FP8) = %d, want N×Hidden = %d×%d", name, len(x.FP8), x.N, x.Hidden)
		}
		switch {
		case x.Scales != nil && x.ScalesUE8M0 != nil:
			return errorf(ErrShape, "%s has both Scales and ScalesUE8M0", name)
		case x.Scales != nil && len(x.Scales) != ns:
			return errorf(ErrShape, "len(%s.Scales) = %d, want N×ceil(Hidden/128) = %d", name, len(x.Scales), ns)
		case x.ScalesUE8M0 != nil && len(x.ScalesUE8M0) != ns:
			return errorf(ErrShape, "len(%s.ScalesUE8M0) = %d, want N×ceil(Hidden/128) = %d", name, len(x.ScalesUE8M0), ns)
		case x.Scales == nil && x.ScalesUE8M0 == nil:
			return errorf(ErrShape, "%s has an FP8 payload without scales", name)
		}
	}
	return nil
}

// Clone returns a deep copy of x (results that alias a Buffer's region can
// be kept past their lifetime this way).
func (x Tokens) Clone() Tokens {
	c := x
	c.BF16 = clone(x.BF16)
	c.FP8 = clone(x.FP8)
	c.Scales = clone(x.Scales)
	c.ScalesUE8M0 = clone(x.ScalesUE8M0)
	return c
}

func clone[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

// TopK is the router's choice for N tokens: Idx holds [N][K] global expert
// ids, −1 meaning "no expert" (the slot is skipped everywhere); Weights, when
// not nil, holds the [N][K] float32 gate weights. It mirrors DeepEP's
// topk_idx (int32 since #422) and topk_weights.
type TopK struct {
	K       int
	Idx     []int32
	Weights []float32
}

func (tk *TopK) validate(name string, n, numExperts int) error {
	if tk.K <= 0 {
		return errorf(ErrShape, "%s.K = %d, want > 0", name, tk.K)
	}
	if n < 0 || n > 0 && tk.K > math.MaxInt/n {
		return errorf(ErrShape, "%s: N×K = %d×%d is negative or overflows int", name, n, tk.K)
	}
	if len(tk.Idx) != n*tk.K {
		return errorf(ErrShape, "len(%s.Idx) = %d, want N×K = %d×%d", name, len(tk.Idx), n, tk.K)
	}
	if tk.Weights != nil && len(tk.Weights) != n*tk.K {
		return errorf(ErrShape, "len(%s.Weights) = %d, want N×K = %d×%d", name, len(tk.Weights), n, tk.K)
	}
	for i, e := range tk.Idx {
		if e < -1 || int(e) >= numExperts {
			return errorf(ErrRange, "%s.Idx[%d][%d] = %d outside [-1, %d)", name, i/tk.K, i%tk.K, e, numExperts)
		}
	}
	return nil
}
