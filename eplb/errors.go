package eplb

import "errors"

// Sentinel errors. Every error returned by this package wraps exactly one of
// them, so callers can test with errors.Is; the message names the argument or
// the violated condition.
var (
	// ErrShape reports a weight matrix with zero layers or zero experts, or
	// ragged rows (layers of different lengths).
	ErrShape = errors.New("eplb: bad weight shape")
	// ErrLoad reports a NaN, ±Inf or negative expert load, or a value that
	// does not fit in float32.
	ErrLoad = errors.New("eplb: bad expert load")
	// ErrConfig reports a Config that violates a precondition of the policy
	// in use (divisibility, replicas < experts, non-positive counts, size
	// limits, an unknown policy).
	ErrConfig = errors.New("eplb: bad config")
	// ErrInfeasible reports a request that cannot be met, such as
	// NoDuplicates when a GPU has more slots than its node has experts.
	ErrInfeasible = errors.New("eplb: infeasible")
	// ErrPlan reports a plan (for example Config.Previous, or one read by
	// eplbio.ReadPlan) that is malformed or does not match the weight shape.
	ErrPlan = errors.New("eplb: bad plan")
	// ErrSyntax reports weights or a plan that cannot be parsed (by
	// eplb/eplbio).
	ErrSyntax = errors.New("eplb: syntax error")
)
