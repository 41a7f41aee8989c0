package fs_test

import (
	"os"
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
)

// child, when set by a platform's test file, runs this test binary as a
// second process of a two-process test and returns its exit status, or
// -1 when the binary is not such a child.
var child func() int

// TestMain fails the test binary when a test leaves a goroutine running.
func TestMain(m *testing.M) {
	if child != nil {
		if code := child(); code >= 0 {
			os.Exit(code)
		}
	}
	leaktest.Main(m)
}
