// Package eprank is how the commands that start ep rank processes through
// sock.Launch (`ep bench`, `demo`) choose the transport those ranks join
// the group with: tcp and unix dial ep/sock directly; ucx bootstraps over
// TCP and then moves the data over UCX (ep/ucx). The choice travels to the
// rank processes in the environment (EnvTransport), beside the bootstrap
// variables that sock.Launch sets.
package eprank

import (
	"context"
	"os"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/sock"
	"github.com/fireflyer-go/fireflyer/ep/ucx"
)

// EnvTransport names the transport of a launched rank when it is not the
// bootstrap network itself ("ucx").
const EnvTransport = "EP_TRANSPORT"

// Transports are the process transports a command accepts.
var Transports = []string{"tcp", "unix", "ucx"}

// IsProcess reports whether transport is one of Transports.
func IsProcess(transport string) bool {
	for _, t := range Transports {
		if t == transport {
			return true
		}
	}
	return false
}

// Network returns the sock.Launch network for transport: its own name for
// tcp and unix, tcp (the bootstrap) for ucx.
func Network(transport string) string {
	if transport == "ucx" {
		return "tcp"
	}
	return transport
}

// Env returns the extra environment of the rank processes for transport
// (UCX_* variables pass through unchanged, as every variable does).
func Env(transport string) []string {
	if transport == "ucx" {
		return []string{EnvTransport + "=ucx"}
	}
	return nil
}

// Dial joins the group as the rank with bootstrap so over transport
// ("tcp", "unix" or "ucx").
func Dial(ctx context.Context, transport string, so sock.Options) (ep.Transport, error) {
	if transport == "ucx" {
		return ucx.Dial(ctx, ucx.Options{Boot: so})
	}
	return sock.Dial(ctx, so)
}

// DialLaunched joins the group from a rank process started by sock.Launch
// with the transport its launcher chose (EnvTransport, else the bootstrap
// network).
func DialLaunched(ctx context.Context, so sock.Options) (ep.Transport, error) {
	tr := os.Getenv(EnvTransport)
	if tr == "" {
		tr = so.Network
	}
	return Dial(ctx, tr, so)
}
