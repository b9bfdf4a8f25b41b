package testhelpers

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// ResetPeakRSS resets the kernel's peak-RSS mark of this process (Linux),
// so that PeakRSS then tells the most memory the process held since.
func ResetPeakRSS(tb testing.TB) {
	tb.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0o200); err != nil {
		tb.Fatalf("resetting the peak RSS: %v", err)
	}
}

// PeakRSS is the peak resident set size of this process (VmHWM) since the
// last ResetPeakRSS, in bytes.
func PeakRSS(tb testing.TB) int64 {
	tb.Helper()
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmHWM in /proc/self/status")
	return 0
}
