// Command imgutil is a thin command line over the imgutil library: append a
// layer, mutate the config, inspect, export, rebase and copy images in a
// Docker daemon (docker://name:tag), a containerd namespace
// (containerd://[namespace//]name:tag), an OCI layout (oci:path) or a
// registry (registry/name:tag).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// usageError is a command line mistake: exit code 2.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

var commands = map[string]struct {
	run     func(ctx context.Context, args []string) error
	summary string
}{
	"append":  {runAppend, "add a directory or tar as a layer onto a base image and save"},
	"mutate":  {runMutate, "set labels, env, entrypoint, cmd or working dir of an image"},
	"inspect": {runInspect, "print an image's config, layers (with sizes) and history"},
	"export":  {runExport, "write an image as a `docker load`-able tar"},
	"rebase":  {runRebase, "put an image's layers above a base onto a new base"},
	"copy":    {runCopy, "copy an image between daemon, registry and layout"},
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "imgutil: unknown command %q (imgutil --help lists them)\n", args[0])
		return 2
	}
	// SIGINT and SIGTERM cancel the command's work: what it was writing is
	// removed, and the exit code says which signal (130, 143), which a
	// second subscription records.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	err := cmd.run(ctx, args[1:])
	var got os.Signal
	if ctx.Err() != nil {
		got = <-sigs
	}
	if s, ok := got.(syscall.Signal); ok {
		fmt.Fprintf(os.Stderr, "imgutil %s: interrupted (%v)\n", args[0], s)
		return 128 + int(s)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "imgutil %s: %v\n", args[0], oneLine(err))
		if strings.Contains(err.Error(), "index.docker.io") {
			fmt.Fprintln(os.Stderr, "imgutil: a name with no docker://, containerd:// or oci: in front is an image in a registry (Docker Hub here); docker://NAME is the daemon's image")
		}
		var u usageError
		if errors.As(err, &u) {
			return 2
		}
		return 1
	}
	return 0
}

func usage() {
	fmt.Println(`imgutil edits container images where they live.

Usage: imgutil COMMAND [OPTIONS] ARGS

Targets:
  docker://NAME:TAG      an image in the Docker daemon, found as the Docker CLI
                         finds it: DOCKER_HOST (unix://, npipe://, tcp:// with
                         DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, ssh://USER@HOST),
                         else DOCKER_CONTEXT or the current Docker context
  containerd://[NS//]NAME:TAG
                         an image in a containerd namespace (CONTAINERD_ADDRESS;
                         NS: k8s.io, moby, ... default CONTAINERD_NAMESPACE or
                         "default"); NAME as ctr and nerdctl name it: myorg/app:1
                         is docker.io/myorg/app:1 (containerd://k8s.io//myorg/app:1)
  oci:PATH               an OCI image layout directory
  REGISTRY/NAME:TAG      an image in a registry (credentials: docker config)

Commands:`)
	for _, name := range []string{"append", "mutate", "inspect", "export", "rebase", "copy"} {
		fmt.Printf("  %-8s %s\n", name, commands[name].summary)
	}
	fmt.Println(`
Run 'imgutil COMMAND --help' for a command's options and examples.`)
}

func oneLine(err error) string {
	s := err.Error()
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
