package local

// SweepStale exposes the removal of stale layer directories to the tests.
var SweepStale = sweepStale

// SetProbeMinSize sets the image size from which GetLayer uses a probe
// image, and returns a function restoring it.
func SetProbeMinSize(n int64) func() {
	old := probeMinSize
	probeMinSize = n
	return func() { probeMinSize = old }
}

// ForgetDaemonKinds forgets the daemons this process learnt are Podman.
func ForgetDaemonKinds() { podmanHosts.Clear() }
