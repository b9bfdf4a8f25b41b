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
// place, otherwise a plain line per item once it completes. A total may be
// an estimate that the bytes done pass (a layer compressed as it is sent
// can come out larger): the size shown is then what was done.
type progressPrinter struct {
	w        io.Writer
	terminal bool

	// mu guards the fields below.
	mu    sync.Mutex
	drawn bool
	// printed are the items (by phase) whose plain line was printed;
	// over, in order, those whose bytes passed their estimate, printed
	// with what was done at finish.
	printed map[string]bool
	over    []string
	size    map[string]int64
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
	total := max(u.Total, u.Complete)
	if !p.terminal {
		p.plain(u, item, done)
		return
	}
	if u.Total == 0 {
		// Its size is not known yet (a layer compressed as it uploads).
		_, _ = fmt.Fprintf(p.w, "\r\033[K%-8s %s %s", u.Phase, item, mib(u.Complete))
		p.drawn = true
		return
	}
	n := min(20, max(0, int(20*u.Complete/total)))
	bar := "[" + strings.Repeat("=", n) + strings.Repeat(" ", 20-n) + "] "
	_, _ = fmt.Fprintf(p.w, "\r\033[K%-8s %s %s%s/%s", u.Phase, item, bar, mib(u.Complete), mib(total))
	p.drawn = true
}

// plain prints an item's line once, when it is complete: at once when it
// ends at its total, at finish when its bytes passed the total (its size
// is then known only when everything is done).
func (p *progressPrinter) plain(u imgutil.Progress, item string, done bool) {
	if p.printed == nil {
		p.printed, p.size = map[string]bool{}, map[string]int64{}
	}
	key := u.Phase + " " + item
	if p.printed[key] || !done {
		return
	}
	if u.Complete == u.Total {
		p.printed[key] = true
		_, _ = fmt.Fprintf(p.w, "%s %s\n", key, mib(u.Total))
		return
	}
	if _, ok := p.size[key]; !ok {
		p.over = append(p.over, key)
	}
	p.size[key] = max(p.size[key], u.Complete)
}

// finish ends a redrawn line, or prints the plain lines held back.
func (p *progressPrinter) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		_, _ = fmt.Fprintln(p.w)
		p.drawn = false
	}
	for _, key := range p.over {
		if !p.printed[key] {
			p.printed[key] = true
			_, _ = fmt.Fprintf(p.w, "%s %s\n", key, mib(p.size[key]))
		}
	}
	p.over = nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
