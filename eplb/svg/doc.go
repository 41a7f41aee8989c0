// Package svg draws EPLB's per-GPU load before and after a plan (the
// metrics of eplb.Evaluate) as a standalone SVG picture.
//
// It keeps drawing out of package eplb, which stays pure computation: it
// imports eplb and the standard library; "fireflyer eplb --svg" uses it.
package svg
