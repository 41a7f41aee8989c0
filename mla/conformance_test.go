package mla_test

import (
	"testing"

	"github.com/fireflyer-go/fireflyer/mla"
	"github.com/fireflyer-go/fireflyer/mla/mlatest"
)

func TestConformanceRef(t *testing.T) { mlatest.Run(t, mla.Ref, mlatest.Options{}) }
func TestConformanceCPU(t *testing.T) { mlatest.Run(t, mla.CPU, mlatest.Options{}) }
