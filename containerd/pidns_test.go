package containerd_test

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"

	"github.com/imgbridge/imgutil/containerd"
	"github.com/imgbridge/imgutil/internal/owner"
	"github.com/imgbridge/imgutil/testhelpers"
)

// Ways to run a helper process: in this pid namespace, or in a new one
// (same hostname and boot) as its pid 1 or as a low pid under a shell.
var (
	hereNS   = []string{}
	asPid1NS = []string{"unshare", "--pid", "--fork", "--mount-proc"}
	lowPidNS = []string{"unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", `"$0" "$@"; exit $?`}
)

// TestLeaseHelper is not a test: run by testLeasesOfOtherPidNamespaces as
// a process of its own. HELPER_MODE=hold takes a save's lease (named by
// its owner token) in HELPER_NS and holds it until stdin closes;
// HELPER_MODE=save makes a save there (its first: it sweeps leases).
func TestLeaseHelper(t *testing.T) {
	mode := os.Getenv("HELPER_MODE")
	if mode == "" {
		t.Skip("a helper process")
	}
	c, err := client.New(os.Getenv("HELPER_SOCKET"))
	must(t, err)
	defer c.Close()
	ns := os.Getenv("HELPER_NS")
	switch mode {
	case "hold":
		id := "imgutil-save-" + owner.Token()
		_, err := c.LeasesService().Create(nsCtx(ns), leases.WithID(id), leases.WithExpiration(time.Hour))
		must(t, err)
		os.Stdout.WriteString("held " + id + "\n")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	case "save":
		img, err := containerd.NewImage("example.com/imgutil-test/swept:latest", c, containerd.WithNamespace(ns))
		must(t, err)
		p, _ := testhelpers.LayerFile(t, map[string]string{"x": "y"})
		must(t, img.AddLayer(p))
		must(t, img.Save())
		os.Stdout.WriteString("saved\n")
	}
}

// testLeasesOfOtherPidNamespaces: a live save's lease is never taken for a
// dead one's by a process of another pid namespace (same hostname and
// boot) whose first save sweeps the leases of saves whose process is gone:
// the owner in another namespace (as its pid 1, as a low pid) and the
// sweeper here, and the reverse.
func testLeasesOfOtherPidNamespaces(t *testing.T, d daemon) {
	if _, err := exec.LookPath("unshare"); err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and unshare for pid namespaces")
	}
	for _, c := range []struct {
		name           string
		owner, sweeper []string
	}{
		{"OwnerPid1SweeperHere", asPid1NS, hereNS},
		{"OwnerLowPidSweeperHere", lowPidNS, hereNS},
		{"OwnerHereSweeperPid1", hereNS, asPid1NS},
		{"OwnerHereSweeperLowPid", hereNS, lowPidNS},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns := "imgutil-pidns-" + strings.ToLower(testhelpers.RandString(8))
			t.Cleanup(func() { removeNamespace(t, d, ns) })
			holder := helper(t, c.owner, d, ns, "hold")
			stdin, err := holder.StdinPipe()
			must(t, err)
			out, err := holder.StdoutPipe()
			must(t, err)
			must(t, holder.Start())
			defer func() { _ = stdin.Close(); _ = holder.Wait() }()
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "held ") {
				t.Fatalf("the holder: %q, %v", line, err)
			}
			id := strings.TrimSpace(strings.TrimPrefix(line, "held "))
			// A lease whose owner is gone, of this namespace: a sweeper here
			// removes it (the sweep ran), one elsewhere keeps it (age alone
			// judges another namespace's pids).
			gone := exec.Command("true")
			must(t, gone.Run())
			dead, err := d.client.LeasesService().Create(nsCtx(ns), leases.WithID("imgutil-save-"+owner.TokenFor(gone.Process.Pid, time.Now())), leases.WithExpiration(time.Hour))
			must(t, err)
			if raw, err := helper(t, c.sweeper, d, ns, "save").CombinedOutput(); err != nil || !strings.Contains(string(raw), "saved") {
				t.Fatalf("the sweeper: %v\n%s", err, raw)
			}
			list, err := d.client.LeasesService().List(nsCtx(ns), `id=="`+id+`"`)
			must(t, err)
			if len(list) != 1 {
				t.Errorf("the live holder's lease %s was removed by a save of another pid namespace", id)
			}
			list, err = d.client.LeasesService().List(nsCtx(ns), `id=="`+dead.ID+`"`)
			must(t, err)
			if swept := len(list) == 0; swept != (len(c.sweeper) == 0) {
				t.Errorf("a dead owner's lease of the test's namespace swept: %v, want %v (sweeper here: %v)", swept, len(c.sweeper) == 0, len(c.sweeper) == 0)
			}
		})
	}
}

// helper is the test binary run as TestLeaseHelper in mode, under the
// command prefix (a pid namespace of its own, or none).
func helper(t *testing.T, prefix []string, d daemon, ns, mode string) *exec.Cmd {
	self, err := os.Executable()
	must(t, err)
	args := append(append([]string{}, prefix...), self, "-test.run", "^TestLeaseHelper$", "-test.count=1")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "HELPER_MODE="+mode, "HELPER_SOCKET="+d.socket, "HELPER_NS="+ns)
	return cmd
}
