package main

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
)

// TestMain fails the test binary when a test leaves a goroutine running
// (the backends' worker goroutines).
func TestMain(m *testing.M) { leaktest.Main(m) }
