package jit

import (
	"fmt"
	"sync"

	"github.com/fireflyer-go/fireflyer/cuda"
)

type loadKey struct {
	ctx *cuda.Context
	key string
}

var (
	loadMu sync.Mutex
	loaded = map[loadKey]*cuda.Function{}
)

// Load compiles r for ctx's device architecture when r.Arch is empty (or
// reads it from the cache), loads the image into ctx and returns the
// kernel. Repeated calls with the same context and key return the same
// function without reloading; modules stay loaded for the context's life.
func (c *Compiler) Load(ctx *cuda.Context, r Request) (*cuda.Function, error) {
	if r.Arch == "" {
		r.Arch = ctx.Info().Arch()
	}
	k, err := c.Compile(r)
	if err != nil {
		return nil, err
	}
	loadMu.Lock()
	defer loadMu.Unlock()
	lk := loadKey{ctx, k.Key}
	if f, ok := loaded[lk]; ok {
		return f, nil
	}
	m, err := ctx.LoadModule(k.Image)
	if err != nil {
		return nil, fmt.Errorf("jit: load %s: %w", r.Instance, err)
	}
	f, err := m.Function(k.Lowered)
	if err != nil {
		m.Unload()
		return nil, fmt.Errorf("jit: %s: %w", r.Instance, err)
	}
	loaded[lk] = f
	return f, nil
}
