package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/imgbridge/imgutil"
)

// progressPrinter draws progress on w: on a terminal one line redrawn in
// place, otherwise a plain line per item once it completes.
type progressPrinter struct {
	w        io.Writer
	terminal bool

	// mu guards drawn.
	mu    sync.Mutex
	drawn bool
}

func newProgressPrinter(f *os.File) *progressPrinter {
	fi, err := f.Stat()
	return &progressPrinter{w: f, terminal: err == nil && fi.Mode()&os.ModeCharDevice != 0}
}

func (p *progressPrinter) update(u imgutil.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	item := u.Item
	if strings.HasPrefix(item, "sha256:") && len(item) > 19 {
		item = item[:19] // a blob: its short digest
	}
	done := u.Total > 0 && u.Complete >= u.Total
	if !p.terminal {
		if done {
			_, _ = fmt.Fprintf(p.w, "%s %s %s\n", u.Phase, item, mib(u.Total))
		}
		return
	}
	bar := ""
	if u.Total > 0 {
		n := int(20 * u.Complete / u.Total)
		bar = "[" + strings.Repeat("=", n) + strings.Repeat(" ", 20-n) + "] "
	}
	_, _ = fmt.Fprintf(p.w, "\r\033[K%-8s %s %s%s/%s", u.Phase, item, bar, mib(u.Complete), mib(u.Total))
	p.drawn = true
}

// finish ends a redrawn line.
func (p *progressPrinter) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		_, _ = fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
