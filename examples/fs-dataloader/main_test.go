package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fireflyer-go/fireflyer/fs"
)

func TestLoaderVisitsEverySampleOncePerEpoch(t *testing.T) {
	dir := t.TempDir()
	const n = 300
	if err := Generate(dir, n, 6000, 7); err != nil {
		t.Fatal(err)
	}
	for _, be := range []string{"auto", "posix"} {
		t.Run(be, func(t *testing.T) {
			c, err := fs.Open(context.Background(), dir, fs.WithBackend(be))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			seen := make([][n]int, 2)
			st, err := Load(context.Background(), c, Options{Depth: 64, Epochs: 2, Seed: 3, Visit: func(ep, i int, _ []byte) {
				seen[ep][i]++
			}})
			if err != nil {
				t.Fatal(err)
			}
			for ep := range 2 {
				for i, k := range seen[ep] {
					if k != 1 {
						t.Fatalf("epoch %d: sample %d read %d times", ep, i, k)
					}
				}
				if slices.IsSorted(st.Orders[ep]) {
					t.Errorf("epoch %d order is not shuffled", ep)
				}
			}
			if slices.Equal(st.Orders[0], st.Orders[1]) {
				t.Error("both epochs used the same order")
			}
			if st.Samples != 2*n || st.Bytes <= 0 {
				t.Fatalf("stats %+v", st)
			}
			var out bytes.Buffer
			st.Print(&out, c.Backend())
			if !strings.Contains(out.String(), "600 samples") || !strings.Contains(out.String(), "samples/s") {
				t.Fatalf("report %q", out.String())
			}
		})
	}
}

func TestLoaderCatchesCorruptSample(t *testing.T) {
	dir := t.TempDir()
	if err := Generate(dir, 20, 3000, 1); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "sample-000013.bin")
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 1
	os.WriteFile(p, b, 0o644)
	c, err := fs.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := Load(context.Background(), c, Options{Depth: 8}); !errors.Is(err, ErrSample) || !strings.Contains(err.Error(), "sample-000013") {
		t.Fatalf("corrupt sample: %v, want ErrSample naming sample-000013", err)
	}
	if _, err := Load(context.Background(), c, Options{Depth: 0}); err == nil {
		t.Fatal("depth 0 accepted")
	}
	if _, err := Load(context.Background(), c, Options{Depth: 8, Epochs: -1}); err == nil {
		t.Fatal("epochs -1 accepted")
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]int{"64k": 65536, "2m": 2 << 20, "100": 100} {
		if got, err := parseSize(s); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "k", "-1", "x"} {
		if _, err := parseSize(s); err == nil {
			t.Errorf("parseSize(%q) accepted", s)
		}
	}
}
