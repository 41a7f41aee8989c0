//go:build !linux

package fs

import "fmt"

type hf3fsBackend struct{ posixBackend }

func newHF3FSBackend(root, mp string, o HF3FSOpts) (*hf3fsBackend, error) {
	return nil, fmt.Errorf("%w: hf3fs is Linux-only", ErrUnsupported)
}
