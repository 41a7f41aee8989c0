// Package examples holds runnable example programs, one per subdirectory,
// each showing one Fireflyer workload end to end.
//
// Where they sit: the application layer (docs/architecture.md). Examples
// import only public packages, so each can be copied out of the module.
package examples
