package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill the child if this program dies before
// its cleanup runs, so no server is left behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
