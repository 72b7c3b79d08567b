//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing where the kernel cannot kill a child with its
// parent; the program's own cleanup stops what it started.
func dieWithParent(*exec.Cmd) {}
