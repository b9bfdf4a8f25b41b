package containerd

import (
	"testing"
	"time"
)

// SlowUnpack makes, until t ends, each lease of a save last term and each
// layer a save unpacks take pause longer.
func SlowUnpack(t testing.TB, term, pause time.Duration) {
	oldTerm, oldHook := leaseTerm, testHookApplied
	leaseTerm, testHookApplied = term, func() { time.Sleep(pause) }
	t.Cleanup(func() { leaseTerm, testHookApplied = oldTerm, oldHook })
}

// CompressorLabel and CompressorOf name the compressor of the blobs a save
// makes, as their labels do.
const CompressorLabel = compressorLabel

func CompressorOf(c Compression) string { return compressorOf(c) }
