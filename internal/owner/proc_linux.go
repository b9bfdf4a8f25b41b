package owner

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
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

// userHZ is the unit of the start times in /proc/<pid>/stat (USER_HZ, 100
// on every architecture Linux runs Go on).
const userHZ = 100

// started is when process pid started, from its stat (clock ticks since
// boot) and the boot time, as root shows them.
func started(root string, pid int) (time.Time, bool) {
	stat, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return time.Time{}, false
	}
	// The command name, in parentheses, may hold anything: fields count
	// from the last ")". starttime is field 22, the 20th after it.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return time.Time{}, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	boot, ok := bootTime(root)
	if !ok {
		return time.Time{}, false
	}
	return boot.Add(time.Duration(ticks) * time.Second / userHZ), true
}

// bootTime is the btime line of root's stat.
func bootTime(root string) (time.Time, bool) {
	stat, err := os.ReadFile(filepath.Join(root, "stat"))
	if err != nil {
		return time.Time{}, false
	}
	for line := range strings.SplitSeq(string(stat), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Unix(secs, 0), err == nil
		}
	}
	return time.Time{}, false
}
