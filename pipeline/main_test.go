package pipeline

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/internal/testutil/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }
