package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/imgbridge/imgutil"
)

// TestProgressPastItsEstimate: a blob whose bytes pass their estimated
// total (an incompressible layer compressed as it is pushed) draws a full
// bar in a terminal and never panics; without a terminal it gets one line,
// with the size that was moved, however many updates come.
func TestProgressPastItsEstimate(t *testing.T) {
	var term bytes.Buffer
	p := &progressPrinter{w: &term, terminal: true}
	for _, done := range []int64{0, 1 << 20, 6 << 20, 7 << 20} {
		p.update(imgutil.Progress{Phase: "push", Item: "sha256:0123456789abcdef0123", Complete: done, Total: 1 << 20})
	}
	p.finish()
	if !strings.Contains(term.String(), "["+strings.Repeat("=", 20)+"] 7.0 MiB/7.0 MiB") {
		t.Errorf("terminal output: %q", term.String())
	}

	var plain bytes.Buffer
	p = &progressPrinter{w: &plain}
	for _, done := range []int64{1 << 19, 3 << 20, 6 << 20, 6 << 20} {
		p.update(imgutil.Progress{Phase: "push", Item: "sha256:0123456789abcdef0123", Complete: done, Total: 1 << 20})
	}
	p.update(imgutil.Progress{Phase: "push", Item: "sha256:fedcba9876543210fedc", Complete: 2 << 20, Total: 2 << 20})
	p.update(imgutil.Progress{Phase: "push", Item: "sha256:fedcba9876543210fedc", Complete: 2 << 20, Total: 2 << 20})
	p.finish()
	want := "push sha256:fedcba987654 2.0 MiB\npush sha256:0123456789ab 6.0 MiB\n"
	if plain.String() != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", plain.String(), want)
	}
}
