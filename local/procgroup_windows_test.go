package local_test

import "os/exec"

// ownGroup: the tests that use it run on Linux only.
func ownGroup(*exec.Cmd) {}

// killGroup kills cmd.
func killGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

// syncAll: benchmarks that sync run on Linux.
func syncAll() {}
