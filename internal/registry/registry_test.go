package registry

import (
	"errors"
	"testing"
)

type be struct{ n int }

func TestRegistry(t *testing.T) {
	var r Registry[*be, int]
	r.Kind = "test"
	r.Register(Entry[*be, int]{Name: "b", New: func(n int) (*be, error) { return &be{n}, nil }})
	r.Register(Entry[*be, int]{Name: "a", Probe: func() error { return errors.New("no hardware") },
		New: func(n int) (*be, error) { return &be{n}, nil }})
	if got, err := r.New("b", 7); err != nil || got.n != 7 {
		t.Fatalf("New(b) = %v, %v", got, err)
	}
	if _, err := r.New("a", 1); err == nil || err.Error() != "test backend a: no hardware" {
		t.Fatalf("New(a) err = %v", err)
	}
	if _, err := r.New("zz", 1); !errors.Is(err, ErrUnknown) {
		t.Fatalf("New(zz) err = %v, want ErrUnknown", err)
	}
	l := r.List()
	if len(l) != 2 || l[0].Name != "a" || l[0].Err == nil || l[1].Err != nil {
		t.Fatalf("List = %+v", l)
	}
	if n := r.Names(); len(n) != 2 || n[0] != "a" || n[1] != "b" {
		t.Fatalf("Names = %v", n)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	var r Registry[*be, int]
	e := Entry[*be, int]{Name: "x", New: func(int) (*be, error) { return nil, nil }}
	r.Register(e)
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on duplicate")
		}
	}()
	r.Register(e)
}
