package archive

import (
	"io"
	"strings"

	"github.com/imgbridge/imgutil"
)

// Reporter adapts a progress function of the public API to Reporting, for
// phase; nil for a nil f.
func Reporter(f func(imgutil.Progress), phase string) func(item string, done, total int64) {
	if f == nil {
		return nil
	}
	return func(item string, done, total int64) {
		f(imgutil.Progress{Phase: phase, Item: item, Complete: done, Total: total})
	}
}

// Reporting returns entries whose content reports, as it is read, to
// report(item, bytes read, size): at most once per MiB and once at the
// end. A nil report returns entries unchanged.
func Reporting(entries []Entry, report func(item string, done, total int64)) []Entry {
	if report == nil {
		return entries
	}
	out := make([]Entry, len(entries))
	for i, e := range entries {
		out[i] = e
		if e.Path != "" {
			item, total := itemOf(e.Name), e.Size
			out[i].progress = func(done int64) { report(item, done, total) }
			continue
		}
		if e.Open == nil {
			continue
		}
		open, item, total := e.Open, itemOf(e.Name), e.Size
		out[i].Open = func() (io.ReadCloser, error) {
			rc, err := open()
			if err != nil {
				return nil, err
			}
			return &reporter{ReadCloser: rc, item: item, total: total, report: report}, nil
		}
	}
	return out
}

// itemOf names a blob entry by its digest.
func itemOf(name string) string {
	if rest, ok := strings.CutPrefix(name, "blobs/"); ok {
		return strings.Replace(rest, "/", ":", 1)
	}
	return name
}

// reporter counts what is read through it and reports it.
type reporter struct {
	io.ReadCloser
	item         string
	done, total  int64
	lastReported int64
	report       func(item string, done, total int64)
}

func (r *reporter) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.done += int64(n)
	if r.done-r.lastReported >= 1<<20 || (err != nil && r.done != r.lastReported) {
		r.lastReported = r.done
		r.report(r.item, r.done, r.total)
	}
	return n, err
}

// ReportingReader returns r reporting, as it is read, to report (see
// Reporting); r itself for a nil report.
func ReportingReader(r io.Reader, name string, total int64, report func(item string, done, total int64)) io.Reader {
	if report == nil {
		return r
	}
	return &reporter{ReadCloser: io.NopCloser(r), item: itemOf(name), total: total, report: report}
}
