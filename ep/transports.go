package ep

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fireflyer-go/fireflyer/internal/registry"
)

// TransportConfig configures a transport constructed by name with
// OpenTransport; each transport reads the fields it needs.
type TransportConfig struct {
	// WorldSize is the number of ranks in the group.
	WorldSize int
	// Rank is this process's rank, for transports with one rank per
	// process (tcp, unix); in-process transports ignore it.
	Rank int
	// MasterAddr, MasterPort, Secret, Timeout and AllowRemote bootstrap the
	// socket transports (see ep/sock.Options).
	MasterAddr  string
	MasterPort  int
	Secret      []byte
	Timeout     time.Duration
	AllowRemote bool
	// FromEnv takes Rank, WorldSize and the bootstrap from the environment
	// instead (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, EP_SECRET, and a
	// launcher's deadline: ep/sock.OptionsFromEnv, ep/sock.Launch).
	FromEnv bool
}

// Opener joins this process to the group a TransportConfig describes. It
// returns the group's endpoints that live in this process, in rank order:
// every rank for an in-process transport, this process's rank for a
// transport with one process per rank. Close each when done.
type Opener func(ctx context.Context) ([]Transport, error)

var transports = registry.Registry[Opener, TransportConfig]{Kind: "ep transport"}

// RegisterTransport makes a transport constructible by name: open checks
// the configuration and returns the Opener (or an error wrapping
// ErrConfig); probe, when not nil, says why the transport cannot be used on
// this machine. Transports register themselves at init: ep/inproc as
// "inproc", ep/sock as "tcp" and "unix". It panics on an empty or
// duplicate name.
func RegisterTransport(name, doc string, probe func() error, open func(TransportConfig) (Opener, error)) {
	transports.Register(registry.Entry[Opener, TransportConfig]{Name: name, Doc: doc, Probe: probe, New: open})
}

// ErrUnknownTransport is wrapped by OpenTransport's error for a name no
// linked package registered.
var ErrUnknownTransport = registry.ErrUnknown

// OpenTransport constructs the transport registered as name with cfg and
// joins the group (a collective for process transports); see Opener for
// what it returns. Errors wrap ErrUnknownTransport (with ErrConfig) for an
// unregistered name, ErrConfig for a bad configuration and ErrTransport
// when joining fails or ctx is already done (then with ctx.Err(), so
// errors.Is(err, context.Canceled) holds). Only linked packages register: a program that opens
// "inproc" imports ep/inproc, one that opens "tcp" or "unix" imports ep/sock
// (a blank import is enough).
func OpenTransport(ctx context.Context, name string, cfg TransportConfig) ([]Transport, error) {
	open, err := transports.New(name, cfg)
	if err != nil {
		if !errors.Is(err, ErrConfig) {
			err = fmt.Errorf("%w: %w", ErrConfig, err)
		}
		return nil, err
	}
	// A ctx that is already done joins nothing, whichever transport it is
	// (an in-process one would otherwise never look at it).
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrTransport, name, err)
	}
	return open(ctx)
}

// Transports lists the registered transports, sorted by name, with
// whether each can be used here (what `fireflyer info` prints).
func Transports() []registry.Status { return transports.List() }
