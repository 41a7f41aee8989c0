// Package examples holds runnable example programs, one per subdirectory,
// each showing one Fireflyer workload end to end.
package examples
