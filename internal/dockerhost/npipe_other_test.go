//go:build !windows

package dockerhost

import (
	"strings"
	"testing"
)

// Elsewhere a named pipe is accepted as a host and refused, clearly, when
// a client of it is made.
func TestNamedPipeElsewhere(t *testing.T) {
	ep, err := fromEnv(func(k string) string {
		return map[string]string{"DOCKER_HOST": "npipe:////./pipe/docker_engine"}[k]
	})
	must(t, err)
	if _, err := ep.Client(); err == nil || !strings.Contains(err.Error(), "npipe:////./pipe/docker_engine") {
		t.Errorf("client of a named pipe on a %s: %v", "unix", err)
	}
}
