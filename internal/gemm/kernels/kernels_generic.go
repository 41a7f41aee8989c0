//go:build !amd64 || noasm

package kernels

func init() { selectGo() }

// Available lists the kernel sets this build can run: only "go".
func Available() []string { return []string{"go"} }

// Use selects a kernel set by name; only "go" exists in this build.
func Use(name string) bool { return name == "go" }

// PeakLoop has no assembly to run in this build; it returns 0.
func PeakLoop(iters int) float64 { return 0 }
