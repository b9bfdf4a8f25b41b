package owner

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procRoot is where Linux shows processes.
const procRoot = "/proc"

// spaceParts names this process's pid space: the boot and the pid
// namespace, as root (/proc) shows them; false when root shows neither
// (hidden, or not mounted) or is the /proc of another pid namespace.
func spaceParts(root string) ([]string, bool) {
	// A /proc of another pid namespace (unshare --pid without
	// --mount-proc) would answer for other processes than ours.
	if self, err := os.Readlink(filepath.Join(root, "self")); err != nil || self != strconv.Itoa(os.Getpid()) {
		return nil, false
	}
	boot, err := os.ReadFile(filepath.Join(root, "sys/kernel/random/boot_id"))
	if err != nil {
		return nil, false
	}
	ns, err := os.Readlink(filepath.Join(root, "self/ns/pid"))
	if err != nil {
		return nil, false
	}
	return []string{strings.TrimSpace(string(boot)), ns}, true
}

// startOf is the start of process pid: its starttime in /proc/<pid>/stat
// (clock ticks since boot, field 22), 0 if it cannot be read.
func startOf(root string, pid int) int64 {
	stat, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold anything: fields count
	// from the last ")". starttime is field 22, the 20th after it.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 20 {
		return 0
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil || ticks < 0 {
		return 0
	}
	return ticks + 1 // 0 means unknown; a process may start at tick 0
}
