package fs_test

import (
	"context"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/fs"
	"github.com/fireflyer-go/fireflyer/fs/errorfs"
	"github.com/fireflyer-go/fireflyer/fs/fstest"
)

func opener(backend string, opts ...fs.Option) fstest.Opener {
	return func(t *testing.T) *fs.Client {
		c, err := fs.Open(context.Background(), t.TempDir(), append([]fs.Option{fs.WithBackend(backend)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		if c.Backend() != backend && backend == "uring" {
			c.Close()
			t.Skipf("io_uring unavailable: %s", c.Features().Note)
		}
		if c.Backend() != backend {
			t.Fatalf("asked for %s, got %s (%s)", backend, c.Backend(), c.Features().Note)
		}
		return c
	}
}

func TestConformance(t *testing.T) {
	t.Run("mem", func(t *testing.T) { fstest.Run(t, opener("mem")) })
	t.Run("mem with latency and reordering", func(t *testing.T) {
		fstest.RunBackend(t, func(t *testing.T, root string) fs.Backend {
			mem, err := fs.NewBackend("mem", fs.BackendOpts{})
			if err != nil {
				t.Fatal(err)
			}
			return errorfs.Wrap(mem, errorfs.Options{Seed: 7, Reorder: true,
				Rules: []errorfs.Rule{{Inject: errorfs.Injection{Latency: 200 * time.Microsecond}}}})
		})
	})
	t.Run("posix", func(t *testing.T) { fstest.Run(t, opener("posix", fs.WithWorkers(4))) })
	t.Run("uring", func(t *testing.T) { fstest.Run(t, opener("uring")) })
	// A wrapped backend is certified like a built-in one: errorfs with no
	// rules must be invisible.
	t.Run("errorfs over posix", func(t *testing.T) {
		fstest.RunBackend(t, func(t *testing.T, root string) fs.Backend {
			be, err := fs.NewBackend("posix", fs.BackendOpts{Root: root, Workers: 4})
			if err != nil {
				t.Fatal(err)
			}
			return errorfs.Wrap(be, errorfs.Options{})
		})
	})
}

func TestAutoPicksUring(t *testing.T) {
	c, err := fs.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Backend() != "uring" {
		t.Skipf("io_uring not usable here: %s", c.Features().Note)
	}
}
