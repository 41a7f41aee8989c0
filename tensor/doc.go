// Package tensor holds the element types and the minimal tensor that every
// Fireflyer package shares: BF16, FP16, FP8 E4M3 and E5M2 (OCP "fn"/IEEE-like
// variants as used by DeepGEMM, DeepEP and FlashMLA), FP4 E2M1 (E2M1, packed
// two per byte as E2M1x2, DeepGEMM's FP4 operands), the UE8M0 power-of-two
// scale byte of DeepGEMM's SM100 path, and a Tensor carrying dtype, shape,
// strides and host bytes (the file and wire form).
//
// It also holds what the compute packages exchange: FP8Matrix, the one
// blocked FP8 operand (E4M3 data with 1×128 or 128×128 block scales of
// ScaleBlock = 128 channels, float32 or UE8M0), its quantizers
// (QuantizePerToken, QuantizePerTokenBF16, QuantizePerBlock, with the UE8M0
// rounding option), Stack, Regroup, Dequantize and FP8FromTensors for
// checkpoint tensors; FP4Matrix, the packed FP4 (E2M1, two per byte)
// operand with per-row 1×32 or 1×128 scales, its quantizer
// QuantizePerTokenFP4, StackFP4 and DequantizeFP4; and Storage, the small
// interface through which every operand's elements are reached: Host slices today, device buffers (a GPU
// backend) later. Code that computes on the CPU resolves Storage to slices
// once per call (HostSlice, FP8Matrix.Host) and gets ErrNotHost for storage
// it cannot address.
//
// Conversions from float32 round to nearest, ties to even, with subnormals.
// The plain XFromFloat32 functions saturate out-of-range finite values to
// ±max, which is what quantizers need (E4M3, which has no infinity, also
// saturates ±Inf; BF16, F16 and E5M2 keep ±Inf); the
// XFromFloat32Torch functions reproduce PyTorch's c10 casts bit for bit
// (c10/util/Float8_e4m3fn.h fp8e4m3fn_from_fp32_value and friends).
//
// The shortest useful program:
//
//	q := tensor.E4M3FromFloat32(3.3)  // nearest E4M3: 3.25
//	fmt.Println(q.Float32())          // 3.25
//
// Where it sits: the bottom of the public API (docs/architecture.md): every
// compute package speaks its types, and it imports no other package of the
// module but the basement.
package tensor
