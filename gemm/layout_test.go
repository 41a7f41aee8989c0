package gemm_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/fireflyer-go/fireflyer/gemm"
	"github.com/fireflyer-go/fireflyer/internal/testutil"
	"github.com/fireflyer-go/fireflyer/tensor"
)

func TestPackUE8M0(t *testing.T) {
	p, err := gemm.PackUE8M0([]tensor.UE8M0{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint32{0x04030201, 0x05, 0x09080706, 0x0A}; !slices.Equal(p, want) {
		t.Fatalf("packed %#x, want %#x", p, want)
	}
	r := testutil.RNG(2)
	for _, kb := range []int{1, 3, 4, 5, 8, 57} {
		sf := make([]tensor.UE8M0, 7*kb)
		for i := range sf {
			sf[i] = tensor.UE8M0(r.IntN(255))
		}
		p, err := gemm.PackUE8M0(sf, 7, kb)
		if err != nil {
			t.Fatal(err)
		}
		u, err := gemm.UnpackUE8M0(p, 7, kb)
		if err != nil || !slices.Equal(u, sf) {
			t.Fatalf("kBlocks=%d: round trip failed (%v)", kb, err)
		}
	}
	if _, err := gemm.UnpackUE8M0(make([]uint32, 3), 2, 5); !errors.Is(err, gemm.ErrShape) {
		t.Errorf("bad packed length: %v", err)
	}
}

func TestMNMajorTMAAligned(t *testing.T) {
	// [2 groups, 3 rows, 2 cols] → [2, 2, 4].
	src := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	out, st, err := gemm.MNMajorTMAAligned(src, 2, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 3, 5, 0, 2, 4, 6, 0, 7, 9, 11, 0, 8, 10, 12, 0}
	if st != 4 || !slices.Equal(out, want) {
		t.Fatalf("got %v stride %d, want %v stride 4", out, st, want)
	}
	if gemm.TMAAlignedSize(5, 4) != 8 || gemm.TMAAlignedSize(5, 1) != 16 || gemm.TMAAlignedSize(8, 2) != 8 {
		t.Error("TMAAlignedSize")
	}
	if gemm.AlignM(0) != 0 || gemm.AlignM(1) != 128 || gemm.AlignM(129) != 256 || gemm.MAlignmentForContiguous() != 128 {
		t.Error("AlignM")
	}
	if _, _, err := gemm.MNMajorTMAAligned([]uint32{1}, 1, 2, 2); !errors.Is(err, gemm.ErrShape) {
		t.Errorf("bad length: %v", err)
	}
}

// FuzzQuantize checks the quantizers on arbitrary finite inputs:
// dequantized values are within one E4M3 step of the input.
