// Package owner decides, in one place, who owns a short-lived name (a
// staging or probe tag in a daemon, a partial file, a temp directory) and
// whether its owner may still use it.
//
// An owned name carries a token: <space>-<pid>-<unix seconds>-<random>.
// The space is the set of processes whose pids mean the same thing: on
// Linux a hash of the hostname, the boot and the pid namespace, so that
// build containers sharing a daemon, a hostname and a boot, but not their
// pids, are different spaces. Within its own space a judge takes a name
// for stale once its pid runs no more, or runs a process started after
// the name was made (the pid was reused). Across spaces a pid means
// nothing, and only age decides: a name is stale once nothing of it
// (its token's time, a file's last change) is newer than the limit for
// its kind (TagLimit, FileLimit). Where the space cannot be known (no
// /proc), it is one of this process alone: its own names are judged by
// pid, every other only by age.
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

// clockSlack covers the rounding of process start times (whole seconds,
// clock ticks) against a token's time.
const clockSlack = 2 * time.Second

// host is what a judge knows of its own space: the space, its pid, and
// how to ask whether a pid of the space runs and since when.
type host struct {
	space string
	pid   int
	// running reports whether a process of the space has pid.
	running func(pid int) bool
	// started is when the process pid started, if that can be known.
	started func(pid int) (time.Time, bool)
	// start is when this process started, if known.
	start      time.Time
	startKnown bool
}

// self is this process's host, learnt once.
var self = sync.OnceValue(func() host { return newHost(procRoot) })

// newHost is the host of this process as the system under root (Linux's
// /proc; unused elsewhere) shows it.
func newHost(root string) host {
	h := host{pid: os.Getpid(), running: running, started: func(pid int) (time.Time, bool) { return started(root, pid) }}
	parts, ok := spaceParts(root)
	if !ok {
		// Nothing tells which processes share our pids: a space of our
		// own, so that only age judges anyone else's names.
		parts = []string{"alone", rand.Text()}
	}
	name, _ := os.Hostname()
	sum := sha256.Sum256([]byte(name + "\n" + strings.Join(parts, "\n")))
	h.space = hex.EncodeToString(sum[:6])
	h.start, h.startKnown = h.started(h.pid)
	return h
}

// Token is the token of a name this process makes now.
func Token() string { return self().token(time.Now()) + strings.ToLower(rand.Text()[:8]) }

// Pattern is a temp name pattern (as os.CreateTemp takes) for a name this
// process makes now: prefix, then a token whose random part is the "*".
func Pattern(prefix string) string { return prefix + self().token(time.Now()) + "*" }

func (h host) token(t time.Time) string { return fmt.Sprintf("%s-%d-%d-", h.space, h.pid, t.Unix()) }

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
	made := time.Unix(t.secs, 0)
	if t.pid == h.pid {
		// Ours, unless made before we started, by the process that had our
		// pid before us.
		return h.startKnown && h.start.After(made.Add(clockSlack))
	}
	if !h.running(t.pid) {
		return true
	}
	start, ok := h.started(t.pid)
	return ok && start.After(made.Add(clockSlack))
}

type parsed struct {
	space string
	pid   int
	secs  int64
}

// parse reads a token: <space>-<pid>-<unix seconds>-<random>.
func parse(token string) (parsed, bool) {
	parts := strings.SplitN(token, "-", 4)
	if len(parts) != 4 || len(parts[0]) != 12 || parts[3] == "" {
		return parsed{}, false
	}
	pid, err1 := strconv.Atoi(parts[1])
	secs, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 || secs <= 0 {
		return parsed{}, false
	}
	return parsed{space: parts[0], pid: pid, secs: secs}, true
}

// TokenFor is the token process pid of this space would have given a
// name at made: for tests that leave names as other processes do.
func TokenFor(pid int, made time.Time) string {
	h := self()
	h.pid = pid
	return h.token(made) + "testtest"
}
