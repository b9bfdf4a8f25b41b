// Package owner decides, in one place, who owns a short-lived name (a
// staging or probe tag in a daemon, a partial file, a temp directory) and
// whether its owner may still use it.
//
// An owned name carries a token: <space>-<pid>-<unix seconds>-<start>-<random>.
// The space is the set of processes whose pids mean the same thing: on
// Linux a hash of the hostname, the boot and the pid namespace, so that
// build containers sharing a daemon, a hostname and a boot, but not their
// pids, are different spaces. The start tells the owner's process apart
// from a later one given the same pid (its start in clock ticks since
// boot on Linux, its creation time on Windows; 0 where unknown), with no
// wall clock involved. Within its own space a judge takes a name for
// stale once its pid runs no more, or runs a process with another start.
// Across spaces a pid means nothing, and only age decides: a name is stale
// once nothing of it (its token's time, a file's last change) is newer
// than the limit for its kind (TagLimit, FileLimit). Where the space
// cannot be known (no /proc, or one of another pid namespace), it is one
// of this process alone: its own names are judged by pid, every other
// only by age.
package owner

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The limits past which a name is stale whoever judges it: long enough
// that no live save or read still uses it. A staging or probe tag lives
// between one call to the daemon and the next; a file may be written for
// as long as an export runs, and its last change is known.
const (
	TagLimit  = time.Hour
	FileLimit = 24 * time.Hour
)

// host is what a judge knows of its own space: the space, its pid and
// start, and how to ask whether a pid of the space runs and which
// process it is.
type host struct {
	space string
	pid   int
	start int64 // 0: unknown
	// running reports whether a process of the space has pid.
	running func(pid int) bool
	// startOf is the start of the process that has pid, 0 if unknown.
	startOf func(pid int) int64
}

// self is this process's host, learnt once.
var self = sync.OnceValue(func() host { return newHost(procRoot) })

// newHost is the host of this process as the system under root (Linux's
// /proc; unused elsewhere) shows it.
func newHost(root string) host {
	h := host{pid: os.Getpid(), running: running, startOf: func(pid int) int64 { return startOf(root, pid) }}
	parts, ok := spaceParts(root)
	if !ok {
		// Nothing tells which processes share our pids: a space of our
		// own, so that only age judges anyone else's names.
		parts = []string{"alone", rand.Text()}
	}
	name, _ := os.Hostname()
	sum := sha256.Sum256([]byte(name + "\n" + strings.Join(parts, "\n")))
	h.space = hex.EncodeToString(sum[:6])
	h.start = h.startOf(h.pid)
	return h
}

// Token is the token of a name this process makes now.
func Token() string { return self().token(time.Now()) + strings.ToLower(rand.Text()[:8]) }

// Pattern is a temp name pattern (as os.CreateTemp takes) for a name this
// process makes now: prefix, then a token whose random part is the "*".
func Pattern(prefix string) string { return prefix + self().token(time.Now()) + "*" }

func (h host) token(t time.Time) string {
	return fmt.Sprintf("%s-%d-%d-%s-", h.space, h.pid, t.Unix(), strconv.FormatInt(h.start, 36))
}

// Stale reports whether the name holding token (what follows its prefix)
// may be removed: its owner is gone, or nothing of it is newer than limit.
// touched is the last sign of use known besides the token's time (a
// file's modification time), zero if none. A token that says nothing of
// its owner is never stale: the name is not ours to judge.
func Stale(token string, touched time.Time, limit time.Duration) bool {
	return self().stale(token, touched, limit, time.Now())
}

func (h host) stale(token string, touched time.Time, limit time.Duration, now time.Time) bool {
	t, ok := parse(token)
	if !ok {
		return false
	}
	last := time.Unix(t.secs, 0)
	if touched.After(last) {
		last = touched
	}
	if now.Sub(last) > limit {
		return true
	}
	if t.space != h.space {
		return false // another space's pid: only age decides
	}
	if t.pid == h.pid {
		// Ours, unless made by the process that had our pid before us.
		return t.start != 0 && h.start != 0 && t.start != h.start
	}
	if !h.running(t.pid) {
		return true
	}
	// The pid runs: the owner, unless it is another process now.
	now2 := h.startOf(t.pid)
	return t.start != 0 && now2 != 0 && t.start != now2
}

type parsed struct {
	space string
	pid   int
	secs  int64
	start int64
}

// parse reads a token: <space>-<pid>-<unix seconds>-<start>-<random>.
func parse(token string) (parsed, bool) {
	parts := strings.SplitN(token, "-", 5)
	if len(parts) != 5 || len(parts[0]) != 12 || parts[4] == "" {
		return parsed{}, false
	}
	pid, err1 := strconv.Atoi(parts[1])
	secs, err2 := strconv.ParseInt(parts[2], 10, 64)
	start, err3 := strconv.ParseInt(parts[3], 36, 64)
	if err1 != nil || err2 != nil || err3 != nil || pid <= 0 || secs <= 0 || start < 0 {
		return parsed{}, false
	}
	return parsed{space: parts[0], pid: pid, secs: secs, start: start}, true
}

// TokenFor is the token process pid of this space would have given a
// name at made, its start unknown: for tests that leave names as other
// processes do.
func TokenFor(pid int, made time.Time) string {
	h := self()
	h.pid, h.start = pid, 0
	return h.token(made) + "testtest"
}
