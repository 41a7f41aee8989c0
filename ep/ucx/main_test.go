package ucx

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
)

// TestMain re-executes the test binary as rank processes (runChild) and
// fails the binary when a test leaves a goroutine running. Without UCX the
// tests that need it skip, and the examples (which move real bytes) are
// left out, with a message saying so.
func TestMain(m *testing.M) {
	if runChild() {
		return
	}
	flag.Parse()
	if _, err := load(); err != nil {
		fmt.Fprintf(os.Stderr, "ep/ucx: UCX is not installed here, its tests skip and the examples do not run: %v\n", err)
		if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "" {
			_ = flag.Set("test.run", "^(Test|Fuzz)")
		}
	}
	leaktest.Main(m)
}
