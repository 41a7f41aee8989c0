package leaktest_test

import (
	"testing"
	"time"

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

// TestReturns runs calls that return at once without error.
func TestReturns(t *testing.T) {
	ran := make(chan string, 2)
	leaktest.Returns(t, time.Second, map[string]func() error{
		"a": func() error { ran <- "a"; return nil },
		"b": func() error { ran <- "b"; return nil },
	})
	if got := len(ran); got != 2 {
		t.Fatalf("%d calls ran, want 2", got)
	}
}
