package oidcprovider

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel kill the provider if the test
// process dies without stopping it.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
