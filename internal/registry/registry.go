// Package registry is the one backend registry every Fireflyer package uses
// (gemm, mla, fs, ep transports): a backend registers a name and a
// constructor once, at init; callers construct by name; `fireflyer info`
// lists every registry the same way. It holds no mutable backend values:
// each New call constructs a fresh backend from its options.
//
// Where it sits: the basement (docs/architecture.md); it imports no other
// package of the module.
package registry

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// ErrUnknown is returned (wrapped) by New for a name nobody registered.
var ErrUnknown = errors.New("unknown backend")

// Entry describes one registered backend.
type Entry[B any, O any] struct {
	// Name is the backend's name ("ref", "cpu", "uring", "tcp", ...).
	Name string
	// Doc is a one-line description shown by `fireflyer info`.
	Doc string
	// Probe reports whether the backend can be constructed on this machine:
	// nil, or an error saying what is missing (hardware, a library, a
	// kernel feature). Nil Probe means always available.
	Probe func() error
	// New constructs the backend with the given options.
	New func(O) (B, error)
}

// Registry is a set of named backends of one kind. The zero value is
// ready to use; it is safe for concurrent use.
type Registry[B any, O any] struct {
	// Kind names what the registry holds ("gemm", "mla", ...), for errors.
	Kind string

	mu      sync.RWMutex
	entries map[string]Entry[B, O]
}

// Register adds e. It panics on an empty or duplicate name or a nil New:
// registration happens at init time from code, never from user input.
func (r *Registry[B, O]) Register(e Entry[B, O]) {
	if e.Name == "" || e.New == nil {
		panic("registry: Register needs a name and a constructor")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries == nil {
		r.entries = make(map[string]Entry[B, O])
	}
	if _, dup := r.entries[e.Name]; dup {
		panic("registry: " + r.Kind + " backend " + e.Name + " registered twice")
	}
	r.entries[e.Name] = e
}

// New constructs the backend called name with opts. It returns an error
// wrapping ErrUnknown for an unregistered name, and the Probe's error when
// the backend is unavailable here.
func (r *Registry[B, O]) New(name string, opts O) (B, error) {
	var zero B
	r.mu.RLock()
	e, ok := r.entries[name]
	r.mu.RUnlock()
	if !ok {
		return zero, fmt.Errorf("%s: %w %q (have %v)", r.Kind, ErrUnknown, name, r.Names())
	}
	if e.Probe != nil {
		if err := e.Probe(); err != nil {
			return zero, fmt.Errorf("%s backend %s: %w", r.Kind, name, err)
		}
	}
	return e.New(opts)
}

// Names returns the registered names, sorted.
func (r *Registry[B, O]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Status is one line of `fireflyer info`: a backend and whether it can be
// used here.
type Status struct {
	// Name and Doc are the registered name and description.
	Name, Doc string
	// Err is nil when the backend is usable, else why not.
	Err error
}

// List probes every backend and returns their status, sorted by name.
func (r *Registry[B, O]) List() []Status {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Status, 0, len(r.entries))
	for _, e := range r.entries {
		s := Status{Name: e.Name, Doc: e.Doc}
		if e.Probe != nil {
			s.Err = e.Probe()
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
