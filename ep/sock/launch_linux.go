//go:build linux

package sock

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the rank process (SIGKILL) when the
// launching process dies, so that ranks never outlive a launcher that was
// killed (prctl PR_SET_PDEATHSIG). A Command that set its own Pdeathsig
// keeps it.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if cmd.SysProcAttr.Pdeathsig == 0 {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
}
