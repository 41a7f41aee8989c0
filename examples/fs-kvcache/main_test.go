package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fireflyer-go/fireflyer/fs"
)

func open(t *testing.T, dir, backend string, capacity int64) (*fs.Client, *Store) {
	t.Helper()
	c, err := fs.Open(context.Background(), dir, fs.WithBackend(backend))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := Open(c, capacity)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

func toks(n int, seed int32) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = seed*1000 + int32(i)
	}
	return out
}

func TestPutGetEvict(t *testing.T) {
	for _, be := range []string{"auto", "posix"} {
		t.Run(be, func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			_, s := open(t, dir, be, 3*32*kvBytesPerToken)
			a, b, c, d := toks(32, 1), toks(32, 2), toks(32, 3), toks(32, 4)
			for _, p := range [][]int32{a, b, c} {
				if err := s.Put(ctx, p, fakeKV(p)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Get(ctx, a) // a becomes most recent; b is now the LRU
			if err != nil || !bytes.Equal(got, fakeKV(a)) {
				t.Fatalf("Get(a) = %d bytes, %v", len(got), err)
			}
			if _, err := s.Get(ctx, toks(32, 9)); !errors.Is(err, ErrMiss) {
				t.Fatalf("Get of an unknown prefix: %v, want ErrMiss", err)
			}
			if err := s.Put(ctx, d, fakeKV(d)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, b); !errors.Is(err, ErrMiss) {
				t.Fatalf("least recently used entry survived: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, fileName(KeyOf(b)))); !os.IsNotExist(err) {
				t.Fatalf("evicted entry's file still exists: %v", err)
			}
			for _, p := range [][]int32{a, c, d} {
				if got, err := s.Get(ctx, p); err != nil || !bytes.Equal(got, fakeKV(p)) {
					t.Fatalf("Get after eviction: %d bytes, %v", len(got), err)
				}
			}
			st := s.Stats()
			if st.Puts != 4 || st.Evictions != 1 || st.Bytes != 3*32*kvBytesPerToken {
				t.Fatalf("stats %+v", st)
			}
			// A new store over the same directory finds the entries.
			_, s2 := open(t, dir, be, 1<<30)
			if got, err := s2.Get(ctx, c); err != nil || !bytes.Equal(got, fakeKV(c)) {
				t.Fatalf("Get after reopen: %d bytes, %v", len(got), err)
			}
		})
	}
}

func TestKeyIsPrefixHash(t *testing.T) {
	a := toks(32, 1)
	if KeyOf(a) != KeyOf(append([]int32(nil), a...)) {
		t.Fatal("same prefix, different keys")
	}
	if KeyOf(a) == KeyOf(a[:31]) || KeyOf([]int32{1, 2}) == KeyOf([]int32{2, 1}) {
		t.Fatal("different prefixes share a key")
	}
	if got := KeyOf(nil).String(); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("KeyOf(nil) = %s, want SHA-256 of nothing", got)
	}
}

func TestMatchLongestPrefix(t *testing.T) {
	ctx := context.Background()
	_, s := open(t, t.TempDir(), "auto", 1<<30)
	p := toks(70, 5)
	for _, n := range []int{16, 48} {
		if err := s.Put(ctx, p[:n], fakeKV(p[:n])); err != nil {
			t.Fatal(err)
		}
	}
	n, kv, err := s.Match(ctx, p)
	if err != nil || n != 48 || !bytes.Equal(kv, fakeKV(p[:48])) {
		t.Fatalf("Match = %d, %d bytes, %v; want the 48-token prefix", n, len(kv), err)
	}
	if n, _, err := s.Match(ctx, toks(70, 6)); n != 0 || err != nil {
		t.Fatalf("Match of an uncached prompt = %d, %v", n, err)
	}
}

func TestConcurrentPutGet(t *testing.T) {
	ctx := context.Background()
	_, s := open(t, t.TempDir(), "auto", 8*16*kvBytesPerToken)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				p := toks(16, int32(g*100+i%10))
				if err := s.Put(ctx, p, fakeKV(p)); err != nil {
					errs <- err
					return
				}
				got, err := s.Get(ctx, p)
				if errors.Is(err, ErrMiss) {
					continue // evicted by another goroutine
				}
				if err != nil || !bytes.Equal(got, fakeKV(p)) {
					errs <- fmt.Errorf("Get: %d bytes, %v", len(got), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Bytes > 8*16*kvBytesPerToken {
		t.Fatalf("store holds %d bytes over its capacity", st.Bytes)
	}
}

func TestDemo(t *testing.T) {
	c, err := fs.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out bytes.Buffer
	if err := demo(context.Background(), &out, c, 60, 4<<20); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "60 requests") || !strings.Contains(out.String(), "reused from cache") {
		t.Fatalf("demo output %q", out.String())
	}
	out.Reset()
	if err := demo(context.Background(), &out, c, 0, 4<<20); err == nil || !strings.Contains(err.Error(), "-requests 0") || out.Len() != 0 {
		t.Fatalf("0 requests: %v, output %q; want an error naming -requests", err, out.String())
	}
}
