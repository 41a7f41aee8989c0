//go:build !linux

package sock

import "os/exec"

// dieWithParent does nothing where the OS has no parent-death signal: the
// ranks then end at their own deadline when the launcher dies.
func dieWithParent(*exec.Cmd) {}
