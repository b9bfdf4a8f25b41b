//go:build !windows

package dockerhost

import (
	"os/exec"
	"syscall"
)

// ownSession starts ssh in a session of its own: a Ctrl-C in the user's
// terminal stops the command, which then closes the connection, rather
// than killing ssh under a request.
func ownSession(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}
