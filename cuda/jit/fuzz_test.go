package jit

import (
	"bytes"
	"testing"
)

// FuzzDecodeEntry feeds arbitrary cache files to the decoder: it must never
// panic, and whatever it accepts must re-encode to the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeEntry("_Z11fp8_gemm_ntILi64ELi64ELi1EEvPv", []byte("\x7fELF cubin")))
	f.Add(encodeEntry("", nil))
	f.Add([]byte(entryMagic))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lowered, image, err := decodeEntry(data)
		if err != nil {
			return
		}
		if again := encodeEntry(lowered, image); !bytes.Equal(again, data) {
			t.Fatalf("accepted entry does not round-trip")
		}
	})
}
