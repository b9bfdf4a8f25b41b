// Command testfailures reads `go test -v` output on stdin (through
// `go tool test2json`, which it runs) and prints what every failing leaf
// test printed, test by test: the messages of a failure in a long,
// interleaved run, which a summary's head and tail may not show.
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
	"strings"
)

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
	said := map[string][]string{}
	var failed []string
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Test == "" {
			continue
		}
		switch e.Action {
		case "output":
			if len(said[e.Test]) < 200 {
				said[e.Test] = append(said[e.Test], e.Output)
			}
		case "fail":
			failed = append(failed, e.Test)
		}
	}
	scanErr := sc.Err()
	if err := cmd.Wait(); err != nil {
		return err
	}
	if scanErr != nil {
		return scanErr
	}
	for _, name := range failed {
		if hasFailingChild(name, failed) {
			continue
		}
		if _, err := fmt.Fprintf(out, "--- what %s said:\n", name); err != nil {
			return err
		}
		for _, line := range said[name] {
			if strings.HasPrefix(line, "=== ") {
				continue
			}
			if _, err := io.WriteString(out, line); err != nil {
				return err
			}
		}
	}
	return nil
}

// hasFailingChild reports whether a subtest of name failed too (its
// messages are then printed under that subtest).
func hasFailingChild(name string, failed []string) bool {
	for _, f := range failed {
		if strings.HasPrefix(f, name+"/") {
			return true
		}
	}
	return false
}
