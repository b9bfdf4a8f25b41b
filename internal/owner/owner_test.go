package owner

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeHost is a host of space whose processes are those of live, by pid
// with their start.
func fakeHost(space string, pid int, live map[int]int64) host {
	return host{
		space: space, pid: pid, start: live[pid],
		running: func(p int) bool { _, ok := live[p]; return ok },
		startOf: func(p int) int64 { return live[p] },
	}
}

func TestStale(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	judge := fakeHost("aaaaaaaaaaaa", 1, map[int]int64{1: 100, 7: 200, 9: 300, 11: 0})
	tok := func(space string, pid int, made time.Time, start int64) string {
		return fmt.Sprintf("%s-%d-%d-%s-xyz", space, pid, made.Unix(), strconv.FormatInt(start, 36))
	}
	at := now.Add(-5 * time.Minute)
	for _, c := range []struct {
		what    string
		token   string
		touched time.Time
		want    bool
	}{
		{"a live process of our space", tok("aaaaaaaaaaaa", 7, at, 200), time.Time{}, false},
		{"a live process, start unknown in the token", tok("aaaaaaaaaaaa", 7, at, 0), time.Time{}, false},
		{"a live process whose start cannot be read", tok("aaaaaaaaaaaa", 11, at, 50), time.Time{}, false},
		{"a process of our space that is gone", tok("aaaaaaaaaaaa", 8, at, 250), time.Time{}, true},
		{"its pid, now another process than the owner", tok("aaaaaaaaaaaa", 9, at, 150), time.Time{}, true},
		{"ourselves", tok("aaaaaaaaaaaa", 1, at, 100), time.Time{}, false},
		{"the process that had our pid before us", tok("aaaaaaaaaaaa", 1, at, 40), time.Time{}, true},
		{"another space, a pid gone here", tok("bbbbbbbbbbbb", 8, at, 250), time.Time{}, false},
		{"another space, our own pid", tok("bbbbbbbbbbbb", 1, at, 40), time.Time{}, false},
		{"another space, older than the limit", tok("bbbbbbbbbbbb", 7, now.Add(-2*time.Hour), 200), time.Time{}, true},
		{"another space, old but touched lately", tok("bbbbbbbbbbbb", 7, now.Add(-2*time.Hour), 200), now.Add(-time.Minute), false},
		{"our space, older than the limit, live", tok("aaaaaaaaaaaa", 7, now.Add(-2*time.Hour), 200), time.Time{}, true},
		{"no token", "manifests", time.Time{}, false},
		{"a short space", tok("aaaa", 8, at, 1), time.Time{}, false},
		{"no random part", fmt.Sprintf("aaaaaaaaaaaa-8-%d-1-", at.Unix()), time.Time{}, false},
		{"four parts", fmt.Sprintf("aaaaaaaaaaaa-8-%d-xyz", at.Unix()), time.Time{}, false},
		{"pid 0", tok("aaaaaaaaaaaa", 0, at, 1), time.Time{}, false},
		{"a time that is no number", "aaaaaaaaaaaa-8-x-1-xyz", time.Time{}, false},
	} {
		if got := judge.stale(c.token, c.touched, time.Hour, now); got != c.want {
			t.Errorf("%s: stale(%q) = %v, want %v", c.what, c.token, got, c.want)
		}
	}
}

// TestClockSteps: a wall clock stepped forward (or back) after a name was
// made changes nothing for its live owner: starts are no wall times.
func TestClockSteps(t *testing.T) {
	judge := fakeHost("aaaaaaaaaaaa", 1, map[int]int64{1: 100, 7: 200})
	made := time.Unix(1_800_000_000, 0)
	tok := fmt.Sprintf("aaaaaaaaaaaa-7-%d-%s-xyz", made.Unix(), strconv.FormatInt(200, 36))
	for _, step := range []time.Duration{-30 * time.Minute, 10 * time.Second, 30 * time.Minute} {
		if judge.stale(tok, time.Time{}, time.Hour, made.Add(step)) {
			t.Errorf("clock stepped %v: a live owner's name is stale", step)
		}
	}
}

func TestTokenAndPattern(t *testing.T) {
	tok := Token()
	p, ok := parse(tok)
	if !ok || p.pid != os.Getpid() || p.space != self().space || p.start != self().start || time.Since(time.Unix(p.secs, 0)) > time.Minute {
		t.Fatalf("Token() = %q, parsed %+v, %v", tok, p, ok)
	}
	if Stale(tok, time.Time{}, time.Hour) {
		t.Errorf("our own fresh token %q is stale", tok)
	}
	pat := Pattern("pre-")
	if !strings.HasPrefix(pat, "pre-"+self().space+"-") || !strings.HasSuffix(pat, "-*") {
		t.Errorf("Pattern = %q", pat)
	}
	f, err := os.CreateTemp(t.TempDir(), pat)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	rest := strings.TrimPrefix(filepath.Base(f.Name()), "pre-")
	if Stale(rest, time.Time{}, time.Hour) {
		t.Errorf("our own file %s is stale", f.Name())
	}
}

// TestHiddenProc: with no /proc to read, the space is this process's
// alone: another such process's names are judged by age only, ours by pid.
func TestHiddenProc(t *testing.T) {
	if procRoot == "" {
		t.Skip("no /proc on " + runtime.GOOS)
	}
	a, b := newHost(t.TempDir()), newHost(t.TempDir())
	if a.space == b.space || a.space == self().space {
		t.Fatalf("spaces with no /proc: %s, %s (ours %s)", a.space, b.space, self().space)
	}
	now := time.Now()
	gone := exitedPid(t)
	if b.stale(a.token(now)+"xyz", time.Time{}, time.Hour, now) {
		t.Error("a process with no /proc judged another's fresh name stale")
	}
	if !b.stale(a.token(now.Add(-2*time.Hour))+"xyz", time.Time{}, time.Hour, now) {
		t.Error("an old name of another space is not stale")
	}
	if !a.stale(fmt.Sprintf("%s-%d-%d-0-xyz", a.space, gone, now.Unix()), time.Time{}, time.Hour, now) {
		t.Error("a name of our own space whose process is gone is not stale")
	}
}

// TestRealProcesses: a process of ours that runs is its names' owner; one
// that exited is not; a pid now held by a process started after the name
// was made is not the owner.
func TestRealProcesses(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("starts true and sleep")
	}
	h := self()
	now := time.Now()
	gone := exitedPid(t)
	if !h.stale(fmt.Sprintf("%s-%d-%d-0-xyz", h.space, gone, now.Unix()), time.Time{}, time.Hour, now) {
		t.Errorf("pid %d exited, its name is not stale", gone)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	if h.stale(fmt.Sprintf("%s-%d-%d-0-xyz", h.space, pid, now.Unix()), time.Time{}, time.Hour, now) {
		t.Errorf("pid %d runs, its name is stale", pid)
	}
	if start := h.startOf(pid); start != 0 {
		other := fmt.Sprintf("%s-%d-%d-%s-xyz", h.space, pid, now.Unix(), strconv.FormatInt(start+1, 36))
		if !h.stale(other, time.Time{}, time.Hour, now) {
			t.Errorf("pid %d: a name its pid had under another process is not stale", pid)
		}
		mine := fmt.Sprintf("%s-%d-%d-%s-xyz", h.space, pid, now.Unix(), strconv.FormatInt(start, 36))
		if h.stale(mine, time.Time{}, time.Hour, now) {
			t.Errorf("pid %d runs, its own name is stale", pid)
		}
	} else if procRoot == "/proc" {
		t.Errorf("the start of pid %d cannot be read", pid)
	}
}

func exitedPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestPidNamespaces runs processes in pid namespaces of their own (as
// build containers sharing a hostname and a boot): no process judges a
// fresh name of another namespace stale, whatever its pid is there (1, a
// low pid, ours); each judges its own namespace's dead process's name
// stale.
func TestPidNamespaces(t *testing.T) {
	unshare := needUnshare(t)
	now := time.Now()
	ours := Token()
	deadHere := fmt.Sprintf("%s-%d-%d-0-xyz", self().space, exitedPid(t), now.Unix())
	// A judge as pid 1 of a namespace, one as pid 2 (under a shell).
	for _, judge := range [][]string{
		{unshare, "--pid", "--fork", "--mount-proc", os.Args[0]},
		{unshare, "--pid", "--fork", "--mount-proc", "sh", "-c", `"$0" "$@"; exit $?`, os.Args[0]},
	} {
		// The judge's own token, and a name of a process of its namespace
		// that exited (pid 2 or 3, free at once in a new namespace).
		out := helper(t, judge, "judge", ours, deadHere, "own", "dead-own")
		if out[0] != "live" || out[1] != "live" {
			t.Errorf("%v judged fresh names of another namespace (pid %d, and a pid gone there): %v", judge[4:], os.Getpid(), out[:2])
		}
		if out[2] != "live" || out[3] != "stale" {
			t.Errorf("%v judged its own name %s, its dead process's %s", judge[4:], out[2], out[3])
		}
	}
	// Names of processes in other namespaces, pid 1 and a low pid, judged
	// here while they may still run.
	for _, maker := range [][]string{
		{unshare, "--pid", "--fork", "--mount-proc", os.Args[0]},
		{unshare, "--pid", "--fork", "--mount-proc", "sh", "-c", `"$0" "$@"; exit $?`, os.Args[0]},
	} {
		tok := helper(t, maker, "token")[0]
		if Stale(tok, time.Time{}, time.Hour) {
			t.Errorf("a fresh name %s of another namespace is stale here", tok)
		}
		p, _ := parse(tok)
		old := fmt.Sprintf("%s-%d-%d-0-xyz", p.space, p.pid, now.Add(-2*time.Hour).Unix())
		if !Stale(old, time.Time{}, time.Hour) {
			t.Errorf("a name of another namespace older than the limit is not stale: %s", old)
		}
	}
}

// TestProcOfAnotherNamespace: a process in a pid namespace of its own that
// sees its parent's /proc (unshare --pid without --mount-proc) cannot
// trust what /proc says of pids: its space is its own alone.
func TestProcOfAnotherNamespace(t *testing.T) {
	unshare := needUnshare(t)
	argv := []string{unshare, "--pid", "--fork", os.Args[0]}
	a, b := helper(t, argv, "token")[0], helper(t, argv, "token")[0]
	pa, _ := parse(a)
	pb, _ := parse(b)
	if pa.space == pb.space || pa.space == self().space {
		t.Errorf("spaces %s and %s (ours %s): want each its own", pa.space, pb.space, self().space)
	}
}

func needUnshare(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 || runtime.GOOS != "linux" {
		t.Skip("needs root and unshare for pid namespaces")
	}
	return path
}

// helper runs this test binary as TestHelper under argv with what it is
// to do, and returns the lines it printed.
func helper(t *testing.T, argv []string, args ...string) []string {
	t.Helper()
	cmd := exec.Command(argv[0], append(argv[1:], "-test.run=^TestHelper$")...)
	cmd.Env = append(os.Environ(), "OWNER_HELPER="+strings.Join(args, " "))
	raw, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, raw)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		if l, ok := strings.CutPrefix(sc.Text(), "helper: "); ok {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestHelper is the process the namespace tests start: "token" prints a
// fresh token of its own; "judge TOKEN..." prints live or stale for each
// (the words "own" and "dead-own" stand for a fresh name of its own and
// one of a process of its namespace that exited).
func TestHelper(t *testing.T) {
	args := strings.Fields(os.Getenv("OWNER_HELPER"))
	if len(args) == 0 {
		t.Skip("run by the namespace tests")
	}
	if args[0] == "token" {
		fmt.Println("helper: " + Token())
		return
	}
	for _, tok := range args[1:] {
		switch tok {
		case "own":
			tok = Token()
		case "dead-own":
			tok = fmt.Sprintf("%s-%d-%d-0-xyz", self().space, exitedPid(t), time.Now().Unix())
		}
		verdict := "live"
		if Stale(tok, time.Time{}, time.Hour) {
			verdict = "stale"
		}
		fmt.Println("helper: " + verdict)
	}
}
