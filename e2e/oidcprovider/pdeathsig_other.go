//go:build !linux

package oidcprovider

import "os/exec"

func setParentDeathSignal(*exec.Cmd) {}
