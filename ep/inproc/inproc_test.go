package inproc_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/fireflyer-go/fireflyer/ep"
	"github.com/fireflyer-go/fireflyer/ep/eptest"
	"github.com/fireflyer-go/fireflyer/ep/inproc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	eptest.Run(t, func(ctx context.Context, ranks int, fn func(context.Context, ep.Transport) error) error {
		return inproc.Run(ctx, ranks, fn)
	})
}
