// Package svg draws a pipeline schedule (package pipeline) as a standalone
// SVG picture, like the figures of the upstream DualPipe README: one row
// per rank, F/B/b/W cells coloured by kind, overlapped F&B pairs split in
// two, idle time hatched; with a pipeline.Report the cells sit at their
// simulated times.
//
// It keeps drawing out of package pipeline, which stays pure computation:
// it imports pipeline and the standard library, and "fireflyer schedule
// --svg", "fireflyer demo --svg" and examples/pipeline-compare use it.
package svg
