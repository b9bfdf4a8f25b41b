package local

import "errors"

// ErrDaemonUnreachable is matched (errors.Is) when the Docker daemon cannot
// be reached at all.
var ErrDaemonUnreachable = errors.New("docker daemon unreachable")
