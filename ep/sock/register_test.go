package sock

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep"
	_ "github.com/fireflyer-go/fireflyer/ep/inproc"
)

// TestTransportRegistry: inproc, tcp and unix are constructed by name from
// one configuration type and listed by ep.Transports.
func TestTransportRegistry(t *testing.T) {
	var names []string
	for _, s := range ep.Transports() {
		if s.Err != nil || s.Doc == "" {
			t.Errorf("%s: %+v", s.Name, s)
		}
		names = append(names, s.Name)
	}
	if len(names) != 3 || names[0] != "inproc" || names[1] != "tcp" || names[2] != "unix" {
		t.Fatalf("Transports() = %v", names)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ts, err := ep.OpenTransport(ctx, "inproc", ep.TransportConfig{WorldSize: 3})
	if err != nil || len(ts) != 3 {
		t.Fatalf("inproc: %d transports, %v", len(ts), err)
	}
	barrierAll(t, ctx, ts)

	master := filepath.Join(t.TempDir(), "m.sock")
	got := make([]ep.Transport, 2)
	var wg sync.WaitGroup
	for r := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts, err := ep.OpenTransport(ctx, "unix", ep.TransportConfig{WorldSize: 2, Rank: r, MasterAddr: master, Secret: []byte("k")})
			if err != nil || len(ts) != 1 || ts[0].Rank() != r {
				t.Errorf("unix rank %d: %v", r, err)
				return
			}
			got[r] = ts[0]
		}()
	}
	wg.Wait()
	if got[0] != nil && got[1] != nil {
		barrierAll(t, ctx, got)
	}

	for _, c := range []struct {
		name string
		cfg  ep.TransportConfig
	}{
		{"carrier-pigeon", ep.TransportConfig{WorldSize: 2}},
		{"inproc", ep.TransportConfig{WorldSize: 0}},
		{"tcp", ep.TransportConfig{WorldSize: 2, Rank: 2}},
		{"unix", ep.TransportConfig{WorldSize: 2}}, // no socket path
	} {
		_, err := ep.OpenTransport(ctx, c.name, c.cfg)
		if !errors.Is(err, ep.ErrConfig) {
			t.Errorf("%s %+v: err %v, want ErrConfig", c.name, c.cfg, err)
		} else if n := strings.Count(err.Error(), ep.ErrConfig.Error()); n != 1 {
			t.Errorf("%s %+v: %q says %q %d times, want once", c.name, c.cfg, err, ep.ErrConfig.Error(), n)
		}
	}
	if _, err := ep.OpenTransport(ctx, "carrier-pigeon", ep.TransportConfig{}); !errors.Is(err, ep.ErrUnknownTransport) {
		t.Errorf("unknown name: %v", err)
	}
}

// barrierAll runs one barrier on every transport concurrently and closes
// them.
func barrierAll(t *testing.T, ctx context.Context, ts []ep.Transport) {
	t.Helper()
	var wg sync.WaitGroup
	for _, tr := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := tr.Barrier(ctx); err != nil {
				t.Errorf("rank %d barrier: %v", tr.Rank(), err)
			}
		}()
	}
	wg.Wait()
	for _, tr := range ts {
		tr.Close()
	}
}

// TestTransportFromEnv: FromEnv reads the bootstrap (and a launcher's
// deadline) from the environment, as a rank started by Launch has it.
func TestTransportFromEnv(t *testing.T) {
	t.Setenv("RANK", "0")
	t.Setenv("WORLD_SIZE", "1")
	t.Setenv("MASTER_ADDR", filepath.Join(t.TempDir(), "m.sock"))
	t.Setenv("EP_SECRET", "k")
	t.Setenv(EnvTimeout, "5s")
	ts, err := ep.OpenTransport(context.Background(), "unix", ep.TransportConfig{FromEnv: true, WorldSize: 7})
	if err != nil || len(ts) != 1 || ts[0].Size() != 1 || ts[0].Rank() != 0 {
		t.Fatalf("OpenTransport from env: %v", err)
	}
	ts[0].Close()
	t.Setenv(EnvTimeout, "soon")
	if _, err := ep.OpenTransport(context.Background(), "unix", ep.TransportConfig{FromEnv: true}); !errors.Is(err, ep.ErrConfig) || !strings.Contains(err.Error(), EnvTimeout) {
		t.Errorf("bad %s: %v", EnvTimeout, err)
	}
	t.Setenv("RANK", "")
	if _, err := ep.OpenTransport(context.Background(), "tcp", ep.TransportConfig{FromEnv: true}); !errors.Is(err, ep.ErrConfig) || !strings.Contains(err.Error(), "RANK") {
		t.Errorf("no RANK: %v", err)
	}
}
