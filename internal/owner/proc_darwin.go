package owner

import "syscall"

// procRoot is unused: macOS has no /proc.
const procRoot = ""

// spaceParts names this process's pid space: the boot (macOS has no pid
// namespaces; the hostname, hashed with these, tells machines apart).
func spaceParts(string) ([]string, bool) {
	boot, err := syscall.Sysctl("kern.boottime")
	if err != nil {
		return nil, false
	}
	return []string{"darwin", boot}, true
}

// startOf is not known on macOS: a pid that runs is taken as its owner.
func startOf(string, int) int64 { return 0 }
