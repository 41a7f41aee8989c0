package leaktest_test

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// TestNoGoroutineLeft starts and joins a goroutine; Main then finds none left.
func TestNoGoroutineLeft(t *testing.T) {
	done := make(chan int)
	go func() { done <- 42 }()
	if got := <-done; got != 42 {
		t.Fatalf("got %d, want 42", got)
	}
}
