package sock

import (
	"context"
	"os"

	"github.com/fireflyer-go/fireflyer/ep"
)

func init() {
	for _, n := range []struct{ network, doc string }{
		{"tcp", "rank processes over TCP (loopback unless AllowRemote)"},
		{"unix", "rank processes over Unix domain sockets"},
	} {
		ep.RegisterTransport(n.network, n.doc, nil, func(cfg ep.TransportConfig) (ep.Opener, error) {
			opts, err := optionsFor(n.network, cfg)
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
		})
	}
}

// optionsFor maps an ep.TransportConfig to Options and validates them.
func optionsFor(network string, cfg ep.TransportConfig) (Options, error) {
	opts := Options{Network: network, Rank: cfg.Rank, WorldSize: cfg.WorldSize, MasterAddr: cfg.MasterAddr,
		MasterPort: cfg.MasterPort, Secret: cfg.Secret, Timeout: cfg.Timeout, AllowRemote: cfg.AllowRemote}
	if cfg.FromEnv {
		var err error
		if opts, err = OptionsFromEnv(network); err != nil {
			return opts, err
		}
		opts.AllowRemote = cfg.AllowRemote
		if os.Getenv(EnvTimeout) != "" {
			left, err := envTimeout()
			if err != nil {
				return opts, err
			}
			opts.Timeout = left
		}
	}
	if network == "tcp" && opts.MasterPort == 0 {
		opts.MasterPort = DefaultPort
	}
	if err := opts.validate(); err != nil {
		return opts, err
	}
	return opts, nil
}
