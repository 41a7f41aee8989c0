package ucx

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
)

// TestMain re-executes the test binary as rank processes (runChild) and
// fails the binary when a test leaves a goroutine running.
func TestMain(m *testing.M) {
	if runChild() {
		return
	}
	leaktest.Main(m)
}
