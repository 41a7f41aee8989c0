// Package inproc is the reference transport of package ep: R ranks that are
// goroutines of one process and share memory. A Put is a copy into the peer's
// region and a Signal an atomic add, so a put followed by a signal is ordered
// (Go's atomics are sequentially consistent).
//
// It mirrors the role of DeepEP's intranode NVLink path (deep_ep.Buffer with
// num_nvl_bytes) and serves the tests, the benchmarks and the project demo.
// Run starts R ranks and runs a function on each; RunBuffers gives each an
// ep.Buffer (ExampleRunBuffers is a complete program):
//
//	opts := ep.Options{NormalBytes: ep.NormalSizeHint(8*n, hidden, k)}
//	err := inproc.RunBuffers(ctx, 8, opts, func(ctx context.Context, b *ep.Buffer) error {
//		res, err := b.Dispatch(ctx, x, topk, ep.DispatchOptions{NumExperts: 64})
//		if err != nil {
//			return err
//		}
//		out, err := b.Combine(ctx, res.X.BF16, res.Handle, ep.CombineOptions{})
//		...
//	})
//
// Where it sits: a transport backend of package ep (docs/architecture.md),
// the in-process reference; it imports ep only.
package inproc
