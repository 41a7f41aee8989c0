package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The table and pictures in docs/pipeline.md are this program's output.
func TestDocsUpToDate(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(&out, dir); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/pipeline.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "| ") && !strings.Contains(string(doc), l) {
			t.Errorf("docs/pipeline.md lacks the row\n%s\n(rerun: go run ./examples/pipeline-compare -svg docs)", l)
		}
	}
	for _, m := range []string{"1f1b", "zb1p", "dualpipe", "dualpipev"} {
		name := "pipeline-" + m + ".svg"
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("../../docs", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("docs/%s is stale (rerun: go run ./examples/pipeline-compare -svg docs)", name)
		}
	}
}
