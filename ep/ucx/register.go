package ucx

import (
	"context"
	"fmt"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/sock"
)

func init() {
	ep.RegisterTransport("ucx", "rank processes over UCX (RDMA verbs, shared memory or TCP, as UCX_TLS selects), bootstrapped over TCP",
		func() error { _, err := load(); return err }, open)
}

// open maps an ep.TransportConfig to Options: the bootstrap is TCP
// (MasterPort defaults to sock.DefaultPort), or whatever sock.Launch set up
// when FromEnv is set in a launched rank.
func open(cfg ep.TransportConfig) (ep.Opener, error) {
	opts, err := optionsFor(cfg)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) ([]ep.Transport, error) {
		t, err := Dial(ctx, opts)
		if err != nil {
			return nil, err
		}
		return []ep.Transport{t}, nil
	}, nil
}

func optionsFor(cfg ep.TransportConfig) (Options, error) {
	boot := sock.Options{Network: "tcp", Rank: cfg.Rank, WorldSize: cfg.WorldSize, MasterAddr: cfg.MasterAddr,
		MasterPort: cfg.MasterPort, Secret: cfg.Secret, Timeout: cfg.Timeout, AllowRemote: cfg.AllowRemote}
	if cfg.FromEnv {
		var err error
		if sock.Launched() {
			var cancel context.CancelFunc
			boot, _, cancel, err = sock.LaunchedOptions(context.Background())
			cancel()
		} else {
			boot, err = sock.OptionsFromEnv("tcp")
		}
		if err != nil {
			return Options{}, err
		}
		boot.AllowRemote = cfg.AllowRemote
	}
	if boot.Network == "tcp" && boot.MasterPort == 0 {
		boot.MasterPort = sock.DefaultPort
	}
	switch {
	case boot.WorldSize < 1 || boot.WorldSize > sock.MaxWorldSize:
		return Options{}, fmt.Errorf("%w: ucx: WorldSize = %d outside [1, %d]", ep.ErrConfig, boot.WorldSize, sock.MaxWorldSize)
	case boot.Rank < 0 || boot.Rank >= boot.WorldSize:
		return Options{}, fmt.Errorf("%w: ucx: Rank = %d outside [0, %d)", ep.ErrConfig, boot.Rank, boot.WorldSize)
	case boot.Timeout < 0:
		return Options{}, fmt.Errorf("%w: ucx: Timeout = %v is negative", ep.ErrConfig, boot.Timeout)
	}
	return Options{Boot: boot}, nil
}

// Info describes the UCX this process would use.
type Info struct {
	// Version is the loaded library's version, e.g. "1.13.1".
	Version string
	// Transports are the transport/device pairs a UCP context created
	// now (with this environment's UCX_TLS, UCX_NET_DEVICES, ...) may use,
	// e.g. ["self/memory0", "tcp/lo", "posix/memory", "cma/memory"].
	Transports []string
}

// Probe loads UCX and creates (and releases) one UCP context with the
// environment's UCX_* settings, to say what UCX would use here. Errors
// wrap ErrUnavailable (no library) or ep.ErrConfig (a UCX_* setting that
// leaves nothing usable).
func Probe() (Info, error) {
	l, err := load()
	if err != nil {
		return Info{}, err
	}
	info := Info{Version: l.version}
	ctx, err := l.newContext(nil, "fireflyer-info")
	if err != nil {
		return info, fmt.Errorf("%w: %w", ep.ErrConfig, err)
	}
	info.Transports = transportsOf(l.contextInfo(ctx))
	l.cleanup(ctx)
	return info, nil
}
