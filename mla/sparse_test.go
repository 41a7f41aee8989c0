package mla_test

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/mla/mlatest"
)

func sparseBackend(t testing.TB, name string) mla.SparseBackend {
	t.Helper()
	be, err := mla.NewSparseBackend(name)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func TestSparseConformanceRef(t *testing.T) {
	mlatest.RunSparse(t, sparseBackend(t, "ref"), mlatest.Options{})
}

func TestSparseConformanceCPU(t *testing.T) {
	mlatest.RunSparse(t, sparseBackend(t, "cpu"), mlatest.Options{})
}
