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
	fs.Duration("timeout", 30*time.Minute, "give up after this long (a hung daemon or registry); 0: never")
	fs.Bool("quiet", false, "print no progress (errors and the result only)")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: imgutil %s [OPTIONS] %s\n\n%s\n\nOptions:\n", name, args, help)
		printOptions(fs)
	}
	return fs
}

// printOptions lists fs's options as the examples write them (--name;
// the flag package takes one dash or two).
func printOptions(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if kind != "" {
			line += " " + kind
		}
		if def := f.DefValue; def != "" && def != "false" && def != "[]" && def != "0" {
			usage += fmt.Sprintf(" (default %s)", def)
		}
		fmt.Fprintf(os.Stderr, "%s\n    \t%s\n", line, usage)
	})
}

// parse parses args and returns the command's session (its context: ctx
// with the --timeout every command takes; close it when done) and the n
// positional targets. Flags may come before or after the targets
// (`imgutil export docker://app -o app.tar`); after "--" everything is a
// target.
func parse(ctx context.Context, fs *flag.FlagSet, args []string, n int) (*session, []target, error) {
	var positional []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				os.Exit(0)
			}
			return nil, nil, usageError{err.Error()}
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
	if len(positional) != n {
		fs.Usage()
		return nil, nil, usageError{fmt.Sprintf("want %d image target(s), got %d", n, len(positional))}
	}
	var ts []target
	for _, a := range positional {
		t, err := parseTarget(a)
		if err != nil {
			return nil, nil, err
		}
		ts = append(ts, t)
	}
	s := &session{ctx: ctx, cancel: func() {}, quiet: fs.Lookup("quiet").Value.(flag.Getter).Get().(bool)}
	if d := fs.Lookup("timeout").Value.(flag.Getter).Get().(time.Duration); d > 0 {
		s.ctx, s.cancel = context.WithTimeout(ctx, d)
	}
	return s, ts, nil
}

func saved(img imgutil.Image) error {
	id, err := img.Identifier()
	if err != nil {
		return err
	}
	fmt.Printf("saved %s (%s)\n", img.Name(), id)
	return nil
}
