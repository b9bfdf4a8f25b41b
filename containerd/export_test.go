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
