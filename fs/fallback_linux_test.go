package fs_test

import (
	"context"
	"testing"

	"github.com/fireflyer-go/fireflyer/fs"
)

func TestUringFallback(t *testing.T) {
	defer fs.RefuseURing()()
	for _, name := range []string{"auto", "uring"} {
		c, err := fs.Open(context.Background(), t.TempDir(), fs.WithBackend(name))
		if err != nil {
			t.Fatal(err)
		}
		if c.Backend() != "posix" || c.Features().Note == "" {
			t.Errorf("%s with io_uring refused: backend %s, note %q; want posix with a note", name, c.Backend(), c.Features().Note)
		}
		c.Close()
	}
}
