//go:build !linux

package fs

import "fmt"

// hf3fsBackend is not available off Linux; newHF3FSBackend says so.
type hf3fsBackend struct{ posixBackend }

func newHF3FSBackend(root, mp string, o HF3FSOpts) (*hf3fsBackend, error) {
	return nil, fmt.Errorf("%w: hf3fs is Linux-only", ErrUnsupported)
}

func probeHF3FS() error { return fmt.Errorf("%w: hf3fs is Linux-only", ErrUnsupported) }
