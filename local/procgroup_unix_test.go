//go:build !windows

package local_test

import (
	"os/exec"
	"syscall"
)

// ownGroup makes cmd the leader of a process group of its own.
func ownGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// killGroup kills cmd's process group (see ownGroup): cmd and what it ran.
func killGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

// syncAll flushes every dirty page of the machine (a daemon's temp files
// included), so that one timed run's write-back does not land on the next.
func syncAll() { syscall.Sync() }
