package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/imgbridge/imgutil"
)

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func newFlags(name, args, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.DurationVar(&commandTimeout, "timeout", 30*time.Minute, "give up after this long (a hung daemon or registry); 0: never")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: imgutil %s [OPTIONS] %s\n\n%s\n\nOptions:\n", name, args, help)
		fs.PrintDefaults()
	}
	return fs
}

// commandTimeout is the --timeout every command takes; cancelTimeout
// releases its timer.
var (
	commandTimeout time.Duration
	cancelTimeout  = func() {}
)

// parse parses args and returns the n positional targets. Flags may come
// before or after the targets (`imgutil export docker://app -o app.tar`);
// after "--" everything is a target.
func parse(fs *flag.FlagSet, args []string, n int) ([]target, error) {
	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				os.Exit(0)
			}
			return nil, usageError{err.Error()}
		}
		left := fs.Args()
		if used := len(rest) - len(left); used > 0 && rest[used-1] == "--" {
			positional = append(positional, left...)
			break
		}
		if len(left) == 0 {
			break
		}
		positional, rest = append(positional, left[0]), left[1:]
	}
	if commandTimeout > 0 {
		cliCtx, cancelTimeout = context.WithTimeout(cliCtx, commandTimeout)
	}
	if len(positional) != n {
		fs.Usage()
		return nil, usageError{fmt.Sprintf("want %d image target(s), got %d", n, len(positional))}
	}
	var ts []target
	for _, a := range positional {
		t, err := parseTarget(a)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

func saved(img imgutil.Image) error {
	id, err := img.Identifier()
	if err != nil {
		return err
	}
	fmt.Printf("saved %s (%s)\n", img.Name(), id)
	return nil
}

// saveAs saves img under name and more, under the command's context where
// the backend takes one (a signal then stops the save and leaves nothing).
func saveAs(img imgutil.Image, name string, more ...string) error {
	if c, ok := img.(interface {
		SaveAsContext(context.Context, string, ...string) error
	}); ok {
		return c.SaveAsContext(cliCtx, name, more...)
	}
	return img.SaveAs(name, more...)
}
