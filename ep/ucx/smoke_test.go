package ucx

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fireflyer-go/fireflyer/ep/sock"
)

func runChild() bool { return false }

func TestSmoke(t *testing.T) {
	for _, tls := range []string{"posix,cma,self", "tcp,self"} {
		t.Run(tls, func(t *testing.T) { smoke(t, tls) })
	}
}

func smoke(t *testing.T, tls string) {
	if _, err := load(); err != nil {
		t.Skip(err)
	}
	master := filepath.Join(t.TempDir(), "m.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := Dial(ctx, Options{Boot: sock.Options{Network: "unix", Rank: r, WorldSize: 2, MasterAddr: master}, Config: map[string]string{"TLS": tls}})
			if err != nil {
				t.Error(err)
				return
			}
			defer tr.Close()
			t.Log(tr.Transports(), tr.PeerErrorHandling())
			reg, err := tr.Register(ctx, 1<<20)
			if err != nil {
				t.Error(err)
				return
			}
			if r == 0 {
				for i := 0; i < 1000; i++ {
					b := make([]byte, 1000)
					for j := range b {
						b[j] = byte(i + j)
					}
					if err := tr.Put(ctx, 1, 8+i*1000, b); err != nil {
						t.Error(err)
						return
					}
				}
				if err := tr.Signal(ctx, 1, 0, 1); err != nil {
					t.Error(err)
				}
			} else {
				if _, err := reg.Wait(ctx, 0, 1); err != nil {
					t.Error(err)
					return
				}
				for i := 0; i < 1000; i++ {
					for j := 0; j < 1000; j++ {
						if reg.Bytes()[8+i*1000+j] != byte(i+j) {
							t.Errorf("byte %d %d", i, j)
							return
						}
					}
				}
			}
			if err := tr.Barrier(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}
