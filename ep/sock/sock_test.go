package sock

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/eptest"
	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
)

func TestMain(m *testing.M) {
	if runChild() {
		return
	}
	leaktest.Main(m)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	p, err := freeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func masterFor(t testing.TB, network string) (string, int) {
	if network == "unix" {
		return filepath.Join(t.TempDir(), "m.sock"), 0
	}
	return "127.0.0.1", freePort(t)
}

// goroutineRunner runs the ranks as goroutines of this process, each with
// its own socket transport.
func goroutineRunner(t testing.TB, network string, secret []byte) eptest.Runner {
	return func(ctx context.Context, ranks int, fn func(context.Context, ep.Transport) error) error {
		addr, port := masterFor(t, network)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		errs := make([]error, ranks)
		var wg sync.WaitGroup
		for r := 0; r < ranks; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tr, err := Dial(ctx, Options{Network: network, Rank: r, WorldSize: ranks, MasterAddr: addr, MasterPort: port, Secret: secret})
				if err != nil {
					errs[r] = fmt.Errorf("rank %d: %w", r, err)
					cancel()
					return
				}
				defer tr.Close()
				if err := fn(ctx, tr); err != nil {
					errs[r] = fmt.Errorf("rank %d: %w", r, err)
					cancel()
				}
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
}

func TestConformanceTCP(t *testing.T) {
	eptest.Run(t, goroutineRunner(t, "tcp", []byte("s3cret")))
}

func TestConformanceUnix(t *testing.T) {
	eptest.Run(t, goroutineRunner(t, "unix", nil))
}
