package kernels

import (
	"errors"
	"testing"

	"github.com/fireflyer-go/fireflyer/cuda"
	"github.com/fireflyer-go/fireflyer/tensor"
)

// FuzzValidation checks that any GEMM or MLA description is either refused
// with a sentinel error or yields a launch whose grid fits the hardware
// limits.
func FuzzValidation(f *testing.F) {
	f.Add(129, 300, 640, 0, 0, 1, 3, 2, 16, 4, 5)
	f.Add(-1, 1<<31, 0, 5, 1, 0, 0, 0, 0, 0, 0)
	f.Fuzz(func(t *testing.T, m, n, k, lda, ldd, saM, batch, sq, hq, splits, pages int) {
		g := gemmOK
		g.M, g.N, g.K, g.LDA, g.LDD, g.SAStrideM, g.SAStrideK = m, n, k, lda, ldd, saM, saM
		if p, err := g.withDefaults(); err != nil {
			if !errors.Is(err, tensor.ErrShape) && !errors.Is(err, tensor.ErrDType) && !errors.Is(err, cuda.ErrInvalid) {
				t.Fatalf("non-sentinel error %v", err)
			}
		} else {
			c := p.launchConfig()
			if c.Grid.X == 0 || c.Grid.Y == 0 || c.Grid.Y > 65535 || p.LDA < p.K || p.LDD < p.N {
				t.Fatalf("accepted %+v with launch %+v", p, c)
			}
			if p.args().Len() != 13 {
				t.Fatal("wrong argument count")
			}
		}
		ml := mlaOK
		ml.Batch, ml.SeqQ, ml.HeadsQ, ml.NumSplits, ml.MaxPages = batch, sq, hq, splits, pages
		if err := ml.validate(); err != nil {
			if !errors.Is(err, tensor.ErrShape) && !errors.Is(err, cuda.ErrInvalid) {
				t.Fatalf("non-sentinel error %v", err)
			}
			return
		}
		pc, cc := ml.partialConfig(), ml.combineConfig()
		if pc.Grid.X == 0 || pc.Grid.Y == 0 || pc.Grid.Z == 0 || pc.Grid.Y > 65535 || pc.Grid.Z > 65535 || cc.Grid.Y > 65535 || cc.Grid.X == 0 {
			t.Fatalf("accepted %+v with grids %+v %+v", ml, pc.Grid, cc.Grid)
		}
	})
}
