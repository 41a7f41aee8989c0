// Package pipeline builds pipeline-parallel training schedules as plain
// data, checks them, simulates them, runs user stages in their order and
// draws them. It mirrors deepseek-ai/DualPipe (dualpipe/dualpipe.py,
// dualpipe/dualpipev.py): DualPipe and DualPipeV come out in exactly
// upstream's op order, next to the classic 1F1B (Megatron-LM) and the
// zero-bubble ZB1P (torch.distributed.pipelining's
// ScheduleInterleavedZeroBubble with one stage per rank).
//
// The pieces, each usable alone:
//
//   - Schedules: OneFOneB, ZB1P, DualPipe and DualPipeV (or Generate)
//     return a *Schedule, per rank an ordered list of Op values: forward F,
//     full backward B, input-only backward b (its weight gradient deferred
//     to a FIFO store), weight gradient W, and overlapped F&B pairs. Each
//     names its phase (which of the rank's stages) and micro-batch.
//     Schedule.Lines prints the `fireflyer schedule --text` format.
//   - Lower adds the point-to-point sends and receives where the data flows;
//     LowerReference posts them in upstream's order with batched commits
//     (batch_isend_irecv, then wait). Program.Check proves every send has
//     its receive and the ranks cannot deadlock.
//   - Simulate runs an exact (int64) discrete-event simulation from op
//     costs F, B, W and FB: makespan, per-rank busy and idle (bubble),
//     bubble ratio and peak activations. It reproduces the bubble formulas
//     of the upstream README table. SimulateProgram replays a lowered
//     program instead, blocking commits included.
//   - Executor runs Stage implementations over a Transport (ChanNetwork in
//     process), matching messages by Tag, with the FIFO weight-gradient
//     store asserted empty at the end of a step. Executor.Step is one
//     rank's step, upstream's DualPipe.step, with its StepOptions:
//     ForwardOnly (inference: no backward, no gradient messages, no weight
//     store), ReturnOutputs (the last stage's outputs) and RankMapping
//     (transport rank → pipeline rank). ScatterBatch and GatherBatch split
//     a batch into micro-batches along a dimension and join outputs back,
//     as upstream's scatter (torch.tensor_split) and gather (torch.cat).
//   - Across processes, the sub-package pipeline/p2p is a
//     Transport[*tensor.Tensor] over any ep.Transport (ep/sock's TCP or
//     Unix sockets, started by sock.Launch): each rank process calls
//     Executor.Step with its own stages and the same program runs
//     unchanged. examples/pipeline-train trains an MLP that way.
//   - Drawing lives in the sub-package pipeline/svg (svg.Write draws a
//     schedule like the upstream README figures), so that this package does
//     no I/O.
//
// The shortest useful program prints DualPipe's op lists and its bubble:
//
//	s, err := pipeline.DualPipe(4, 8) // 4 ranks, 8 micro-batches
//	if err != nil { ... }
//	for _, l := range s.Lines() {
//		fmt.Println(l)
//	}
//	rep, err := pipeline.Simulate(s, pipeline.SimOptions{
//		Costs: pipeline.OpCosts{F: 1, B: 2, W: 1, FB: 3},
//	})
//	fmt.Println(rep.Makespan, rep.Idle) // 26 [2 2 2 2]
//
// Where it sits: a compute package (docs/architecture.md), pure: it imports
// the standard library and tensor only and does no I/O; pipeline/svg draws
// its schedules and pipeline/p2p carries its messages between processes.
package pipeline
