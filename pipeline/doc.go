// Package pipeline builds pipeline-parallel schedules (1F1B, ZB1P, DualPipe, DualPipeV) as data, simulates them, executes user stages in their order and draws them.
//
// Upstream: deepseek-ai/DualPipe.
//
// This package is not built yet; this file says what it will hold.
package pipeline
