// Command testfailures reads `go test -v` output on stdin (through
// `go tool test2json`, which it runs) and prints the last lines every
// failing leaf test printed, test by test, and those of tests that started
// and never ended (a timeout, a fatal error): the messages of a failure in
// a long, interleaved run, which a summary's head and tail may not show.
// With no such test (a build failure), it prints the last lines printed
// outside any test.
//
//	go run ./internal/tools/testfailures < local-test.log
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// keep is how many of its last lines are printed per test.
const keep = 60

// event is the part of a test2json event read here.
type event struct {
	Action string
	Test   string
	Output string
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testfailures:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	cmd := exec.Command("go", "tool", "test2json")
	cmd.Stdin = in
	cmd.Stderr = os.Stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	said := map[string][]string{} // per test ("" outside any), its last lines
	var started, failed []string
	ended := map[string]bool{}
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		switch e.Action {
		case "output":
			if !strings.HasPrefix(e.Output, "=== ") {
				said[e.Test] = append(said[e.Test], e.Output)
				if len(said[e.Test]) > 2*keep {
					said[e.Test] = slices.Clone(said[e.Test][len(said[e.Test])-keep:])
				}
			}
		case "run":
			started = append(started, e.Test)
		case "fail":
			if e.Test != "" { // a package's failure: its tests', or the fallback
				failed = append(failed, e.Test)
			}
			ended[e.Test] = true
		case "pass", "skip":
			ended[e.Test] = true
		}
	}
	scanErr := sc.Err()
	if err := cmd.Wait(); err != nil {
		return err
	}
	if scanErr != nil {
		return scanErr
	}
	var unended []string
	for _, name := range started {
		if name != "" && !ended[name] {
			unended = append(unended, name)
		}
	}
	printed := false
	for _, group := range []struct {
		names []string
		what  string
	}{{failed, "failed"}, {unended, "never ended"}} {
		for _, name := range group.names {
			if hasChildIn(name, group.names) {
				continue // its subtest's lines say it
			}
			printed = true
			if err := show(out, fmt.Sprintf("%s (%s)", name, group.what), said[name]); err != nil {
				return err
			}
		}
	}
	if !printed {
		return show(out, "the run, outside any test", said[""])
	}
	return nil
}

// show prints what, then the last keep of lines.
func show(out io.Writer, what string, lines []string) error {
	if _, err := fmt.Fprintf(out, "--- what %s printed last:\n", what); err != nil {
		return err
	}
	for _, line := range lines[max(0, len(lines)-keep):] {
		if _, err := io.WriteString(out, line); err != nil {
			return err
		}
	}
	return nil
}

// hasChildIn reports whether a subtest of name is among names.
func hasChildIn(name string, names []string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, name+"/") {
			return true
		}
	}
	return false
}
