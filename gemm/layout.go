package gemm

import (
	"github.com/fireflyer-go/fireflyer/tensor"
)

// MAlignmentForContiguous returns 128, the row alignment of every group's
// segment in the contiguous grouped layout (DeepGEMM
// get_m_alignment_for_contiguous_layout).
func MAlignmentForContiguous() int { return 128 }

// AlignM rounds m up to the contiguous-layout alignment (128).
func AlignM(m int) int {
	a := MAlignmentForContiguous()
	return (m + a - 1) / a * a
}

// TMAAlignedSize rounds n elements of elemBytes bytes up to a multiple of 16
// bytes (DeepGEMM get_tma_aligned_size). elemBytes must divide 16.
func TMAAlignedSize(n, elemBytes int) int {
	a := 16 / elemBytes
	return (n + a - 1) / a * a
}

// PackUE8M0 packs UE8M0 scales [rows, kBlocks] (row-major) four per uint32
// along K, little-endian: byte j of word i of a row is K block 4i+j; missing
// trailing blocks are zero bytes. The result is [rows, ceil(kBlocks/4)], the
// int32 scale layout of DeepGEMM's SM100 kernels
// (get_mn_major_tma_aligned_packed_ue8m0_tensor, before the MN-major
// transpose). Errors: ErrShape if len(sf) != rows·kBlocks.
func PackUE8M0(sf []tensor.UE8M0, rows, kBlocks int) ([]uint32, error) {
	if rows < 0 || kBlocks < 0 || !mulOK(rows, kBlocks) || len(sf) != rows*kBlocks {
		return nil, argErr("sf", ErrShape, "len %d, want rows·kBlocks = %d·%d", len(sf), rows, kBlocks)
	}
	w := (kBlocks + 3) / 4
	out := make([]uint32, rows*w)
	if len(out) == 0 {
		return out, nil
	}
	for r := 0; r < rows; r++ {
		for kb := 0; kb < kBlocks; kb++ {
			out[r*w+kb/4] |= uint32(sf[r*kBlocks+kb]) << (8 * (kb % 4))
		}
	}
	return out, nil
}

// UnpackUE8M0 inverts PackUE8M0: packed [rows, ceil(kBlocks/4)] to
// [rows, kBlocks]. Errors: ErrShape on a length mismatch.
func UnpackUE8M0(packed []uint32, rows, kBlocks int) ([]tensor.UE8M0, error) {
	w := (kBlocks + 3) / 4
	if rows < 0 || kBlocks < 0 || !mulOK(rows, w) || len(packed) != rows*w {
		return nil, argErr("packed", ErrShape, "len %d, want rows·ceil(kBlocks/4) = %d·%d", len(packed), rows, w)
	}
	out := make([]tensor.UE8M0, rows*kBlocks)
	if len(out) == 0 {
		return out, nil
	}
	for r := 0; r < rows; r++ {
		for kb := 0; kb < kBlocks; kb++ {
			out[r*kBlocks+kb] = tensor.UE8M0(packed[r*w+kb/4] >> (8 * (kb % 4)))
		}
	}
	return out, nil
}

// MNMajorTMAAligned transposes scales [groups, mn, cols] (row-major, the
// K-major layout this package uses) into the MN-major, TMA-aligned layout
// DeepGEMM's CUDA kernels read: [groups, cols, alignedMN] with alignedMN =
// TMAAlignedSize(mn, 4), i.e. element (g, r, c) at
// g·cols·alignedMN + c·alignedMN + r (DeepGEMM
// get_col_major_tma_aligned_tensor). T is float32 (SM90 scales) or uint32
// (packed UE8M0). Padding entries are zero. It returns the data and
// alignedMN (the stride between K columns). Errors: ErrShape on a length
// mismatch.
func MNMajorTMAAligned[T float32 | uint32](src []T, groups, mn, cols int) ([]T, int, error) {
	if groups < 0 || mn < 0 || cols < 0 || !mulOK(groups, mn) || !mulOK(groups*mn, cols) || len(src) != groups*mn*cols {
		return nil, 0, argErr("src", ErrShape, "len %d, want groups·mn·cols = %d·%d·%d", len(src), groups, mn, cols)
	}
	am := TMAAlignedSize(mn, 4)
	if !mulOK(groups, am) || !mulOK(groups*am, cols) {
		return nil, 0, argErr("mn", ErrShape, "groups·cols·alignedMN too large")
	}
	out := make([]T, groups*cols*am)
	if len(src) == 0 {
		return out, am, nil
	}
	for g := 0; g < groups; g++ {
		for r := 0; r < mn; r++ {
			for c := 0; c < cols; c++ {
				out[(g*cols+c)*am+r] = src[(g*mn+r)*cols+c]
			}
		}
	}
	return out, am, nil
}
