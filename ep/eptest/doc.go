// Package eptest is the conformance suite of package ep: every Transport
// proves itself by passing it, as gonum's testblas does for BLAS backends.
//
// A suite is a list of named Cases. Each Case says how many ranks it needs
// and what one rank does; every rank generates all ranks' inputs from fixed
// seeds, so it can check what it receives against a reference computed
// locally, with upstream's thresholds (DeepEP tests/test_intranode.py and
// tests/test_low_latency.py, DeepEP's shifted calc_diff). A Runner starts
// the ranks over a transport: goroutines for ep/inproc, processes for a
// socket transport (the child looks its Case up by name with Find).
//
//	func TestConformance(t *testing.T) {
//		eptest.Run(t, func(ctx context.Context, ranks int, fn func(context.Context, ep.Transport) error) error {
//			return inproc.Run(ctx, ranks, fn)
//		})
//	}
//
// Where it sits: a check (docs/architecture.md); it imports testing, so only
// tests import it.
package eptest
