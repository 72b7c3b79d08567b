package redistest

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill redis-server if the test binary dies
// before its cleanup runs (a panic or a timeout), so no server is left behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
