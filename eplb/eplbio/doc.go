// Package eplbio reads and writes the file formats of EPLB: expert-load
// matrices as JSON or CSV (ParseWeights) and plans as the JSON object
// "fireflyer eplb --json" prints (ReadPlan). Errors wrap the sentinels of
// package eplb (ErrSyntax, ErrLoad, ErrShape, ErrPlan), and what they
// return has passed eplb.ValidateWeights or eplb.ValidatePlan.
//
// It keeps I/O out of package eplb, which stays pure computation: it
// imports eplb and the standard library; "fireflyer eplb" uses it.
package eplbio
