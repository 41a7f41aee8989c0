package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckpointRoundTrip(t *testing.T) {
	for _, be := range []string{"auto", "posix"} {
		dir := t.TempDir()
		var out bytes.Buffer
		if err := run(context.Background(), &out, dir, 2, be); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "wrote 6 tensors") || !strings.Contains(out.String(), "6 checksums OK, step 1000") {
			t.Fatalf("output %q", out.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "checkpoint.safetensors.tmp")); !os.IsNotExist(err) {
			t.Fatal("temporary file left behind")
		}
	}
}
