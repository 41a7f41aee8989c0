package sock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
)

func TestOptionsFromEnv(t *testing.T) {
	t.Setenv("MASTER_ADDR", "localhost")
	t.Setenv("MASTER_PORT", "9123")
	t.Setenv("RANK", "2")
	t.Setenv("WORLD_SIZE", "4")
	t.Setenv("EP_SECRET", "k")
	o, err := OptionsFromEnv("tcp")
	if err != nil {
		t.Fatal(err)
	}
	if o.MasterAddr != "localhost" || o.MasterPort != 9123 || o.Rank != 2 || o.WorldSize != 4 || string(o.Secret) != "k" {
		t.Fatalf("options %+v", o)
	}
	t.Setenv("RANK", "two")
	if _, err := OptionsFromEnv("tcp"); !errors.Is(err, ep.ErrConfig) {
		t.Fatalf("RANK=two: %v, want ErrConfig", err)
	}
	t.Setenv("RANK", "")
	if _, err := OptionsFromEnv("tcp"); !errors.Is(err, ep.ErrConfig) {
		t.Fatalf("RANK unset: %v, want ErrConfig", err)
	}
}

func TestDialValidation(t *testing.T) {
	ctx := context.Background()
	for _, o := range []Options{
		{Network: "udp", WorldSize: 1},
		{Network: "tcp", Rank: 1, WorldSize: 1, MasterPort: 1},
		{Network: "tcp", Rank: 0, WorldSize: 0, MasterPort: 1},
		{Network: "tcp", WorldSize: 2, MasterPort: 0},
		{Network: "tcp", WorldSize: 2, MasterPort: 1, MasterAddr: "8.8.8.8"},
		{Network: "unix", WorldSize: 2},
		// a world too large for the mesh (it used to panic in make, or
		// wrap around in the handshake's uint32)
		{Network: "tcp", Rank: 0, WorldSize: 1 << 40, MasterPort: 1},
		{Network: "tcp", Rank: 0, WorldSize: MaxWorldSize + 1, MasterPort: 1},
		{Network: "unix", Rank: 1, WorldSize: 1<<32 + 2, MasterAddr: "/nonexistent/x"},
	} {
		if _, err := Dial(ctx, o); !errors.Is(err, ep.ErrConfig) {
			t.Errorf("Dial(%+v) = %v, want ErrConfig", o, err)
		}
	}
}

// TestSecretMismatch: ranks with different secrets never connect; both
// fail by the bootstrap deadline.
func TestSecretMismatch(t *testing.T) {
	addr, port := masterFor(t, "tcp")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	start := time.Now()
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := Dial(context.Background(), Options{Network: "tcp", Rank: r, WorldSize: 2, MasterAddr: addr, MasterPort: port,
				Secret: []byte{byte('a' + r)}, Timeout: 2 * time.Second})
			if err == nil {
				tr.Close()
			}
			errs[r] = err
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if !errors.Is(err, ep.ErrTransport) {
			t.Errorf("rank %d: %v, want a transport error", r, err)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestSingleRank: a group of one needs no peers; puts and signals go to
// the local region.
func TestSingleRank(t *testing.T) {
	ctx := context.Background()
	tr, err := Dial(ctx, Options{Network: "tcp", WorldSize: 1, MasterPort: freePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	reg, err := tr.Register(ctx, 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Put(ctx, 0, 8, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := tr.Signal(ctx, 0, 0, 3); err != nil {
		t.Fatal(err)
	}
	if v := reg.Load(0); v != 3 || string(reg.Bytes()[8:10]) != "hi" {
		t.Fatalf("counter %d, bytes %q", v, reg.Bytes()[8:10])
	}
	if err := tr.Put(ctx, 0, 60, make([]byte, 8)); !errors.Is(err, ep.ErrRange) {
		t.Fatalf("put past the end: %v", err)
	}
	if err := tr.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
}
