package local

import "errors"

// ErrDaemonUnreachable is matched (errors.Is) when the Docker daemon cannot
// be reached at all.
var ErrDaemonUnreachable = errors.New("docker daemon unreachable")

// ErrLoadDropped is matched (errors.Is) when the daemon dropped loads of
// an image it was given whole, as many times as a save tries: their lease
// was removed while they ran (`docker image prune` on the containerd
// image store removes the leases of loads in flight), the image loaded
// was removed before it could be named or was named without its content
// (moby's containerd store: its inspect lists no layers), or the daemon
// closed the load's connection with no answer while it still answers the
// client (moby does when such a load is not read whole). Nothing of it was
// named.
var ErrLoadDropped = errors.New("the daemon dropped the load (a prune or a cleanup removed it meanwhile)")
