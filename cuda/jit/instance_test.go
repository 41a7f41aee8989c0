package jit_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/fireflyer-go/fireflyer/cuda/jit"
)

func TestParseInstance(t *testing.T) {
	good := []struct {
		in   string
		name string
		args []string
	}{
		{"k", "k", nil},
		{"fp8_gemm_nt<64, 64, 1>", "fp8_gemm_nt", []string{"64", "64", "1"}},
		{"  ns::mla_decode<576,512 ,64>  ", "ns::mla_decode", []string{"576", "512", "64"}},
		{"::k<float>", "::k", []string{"float"}},
		{"k<Foo<1, 2>, Bar<Baz<3>>>", "k", []string{"Foo<1, 2>", "Bar<Baz<3>>"}},
		{"k<(3 > 2), (1 < 2), arr[1,2]>", "k", []string{"(3 > 2)", "(1 < 2)", "arr[1,2]"}},
		{"k<__nv_bfloat16, true>", "k", []string{"__nv_bfloat16", "true"}},
	}
	for _, c := range good {
		t.Run(c.in, func(t *testing.T) {
			got, err := jit.ParseInstance(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != c.name || !slices.Equal(got.Args, c.args) {
				t.Fatalf("got %q %q, want %q %q", got.Name, got.Args, c.name, c.args)
			}
			again, err := jit.ParseInstance(got.String())
			if err != nil || again.String() != got.String() {
				t.Fatalf("round trip %q -> %q (%v)", got.String(), again.String(), err)
			}
		})
	}
	for _, in := range []string{"", "<1>", "9k", "k<", "k<>", "k<1,>", "k<1>>", "k<(1>", "k<[1)>", "k 1", "a::::b", "k<1> x", "k-1"} {
		if _, err := jit.ParseInstance(in); !errors.Is(err, jit.ErrInstance) {
			t.Errorf("ParseInstance(%q) = %v, want ErrInstance", in, err)
		}
	}
}

func FuzzParseInstance(f *testing.F) {
	for _, s := range []string{"k", "fp8_gemm_nt<64, 64, 1>", "k<Foo<1, 2>, (3 > 2)>", "k<", "::a::b<[x]>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		inst, err := jit.ParseInstance(s)
		if err != nil {
			if !errors.Is(err, jit.ErrInstance) {
				t.Fatalf("error does not wrap ErrInstance: %v", err)
			}
			return
		}
		again, err := jit.ParseInstance(inst.String())
		if err != nil {
			t.Fatalf("%q parsed to %q which does not parse: %v", s, inst.String(), err)
		}
		if again.String() != inst.String() {
			t.Fatalf("round trip %q -> %q", inst.String(), again.String())
		}
	})
}

func ExampleParseInstance() {
	inst, _ := jit.ParseInstance("fp8_gemm_nt<64,64, 1>")
	fmt.Println(inst.Name, len(inst.Args), inst)
	// Output: fp8_gemm_nt 3 fp8_gemm_nt<64, 64, 1>
}
