package archive

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/userfile"
)

// Entry is one file of an archive. Open streams its Size bytes; Data holds
// them instead for small files.
type Entry struct {
	Name string
	Size int64
	Data []byte
	Open func() (io.ReadCloser, error)
}

// Write streams entries to w as a tar. An entry whose content is not exactly
// Size bytes long fails the write.
func Write(w io.Writer, entries []Entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := writeEntry(tw, e); err != nil {
			return fmt.Errorf("writing %s: %w", e.Name, err)
		}
	}
	return tw.Close()
}

func writeEntry(tw *tar.Writer, e Entry) error {
	hdr := &tar.Header{Name: e.Name, Mode: 0o644, Size: e.Size, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if e.Open == nil {
		_, err := tw.Write(e.Data)
		return err
	}
	rc, err := e.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.CopyBuffer(tw, rc, make([]byte, 1<<20))
	if errors.Is(err, tar.ErrWriteTooLong) || (err == nil && n != e.Size) {
		return fmt.Errorf("content is not %d bytes long: %w", e.Size, imgutil.ErrInvalidArgument)
	}
	return err
}

// dockerManifest is one image of a docker-archive manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// layerEntries returns the archive entries of layers, all in one form:
// uncompressed tars when every layer knows its uncompressed size without
// work (a daemon's layers, new layer files), else the stored (compressed)
// blobs. Some readers of docker archives assume one form for all layers.
func layerEntries(layers []v1.Layer) ([]Entry, error) {
	entries := make([]Entry, len(layers))
	sizes := make([]int64, len(layers))
	uncompressed := true
	for i, l := range layers {
		u, ok := l.(interface{ UncompressedSize() (int64, error) })
		if !ok {
			uncompressed = false
			break
		}
		size, err := u.UncompressedSize()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		sizes[i] = size
	}
	for i, l := range layers {
		if !uncompressed {
			e, err := compressedEntry(l)
			if err != nil {
				return nil, fmt.Errorf("layer %d: %w", i, err)
			}
			entries[i] = e
			continue
		}
		d, err := l.DiffID()
		if err != nil {
			return nil, fmt.Errorf("layer %d: getting diff ID: %w", i, err)
		}
		entries[i] = Entry{Name: blobName(d), Size: sizes[i], Open: l.Uncompressed}
	}
	return entries, nil
}

func compressedEntry(l v1.Layer) (Entry, error) {
	d, err := l.Digest()
	if err != nil {
		return Entry{}, fmt.Errorf("getting layer digest: %w", err)
	}
	size, err := l.Size()
	if err != nil {
		return Entry{}, fmt.Errorf("getting layer size: %w", err)
	}
	return Entry{Name: blobName(d), Size: size, Open: l.Compressed}, nil
}

func blobName(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// Docker returns the entries of a docker-archive (what `docker load` reads)
// holding one image: its config, its layers and a manifest.json that tags it
// with tags. A layer shared by two positions is written once. Layers for
// which omit is true are listed in manifest.json but not written: a daemon
// that holds their chain never reads them (omit may be nil).
func Docker(rawConfig []byte, configDigest v1.Hash, layers []v1.Layer, tags []string, omit func(i int) bool) ([]Entry, error) {
	entries := []Entry{{Name: blobName(configDigest), Size: int64(len(rawConfig)), Data: rawConfig}}
	m := dockerManifest{Config: blobName(configDigest), RepoTags: tags, Layers: make([]string, len(layers))}
	var sent []v1.Layer
	var sentAt []int
	for i, l := range layers {
		if omit != nil && omit(i) {
			d, err := l.DiffID()
			if err != nil {
				return nil, fmt.Errorf("layer %d: getting diff ID: %w", i, err)
			}
			m.Layers[i] = blobName(d)
			continue
		}
		sent = append(sent, l)
		sentAt = append(sentAt, i)
	}
	les, err := layerEntries(sent)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{entries[0].Name: true}
	for j, e := range les {
		m.Layers[sentAt[j]] = e.Name
		if !seen[e.Name] {
			seen[e.Name] = true
			entries = append(entries, e)
		}
	}
	raw, err := json.Marshal([]dockerManifest{m})
	if err != nil {
		return nil, fmt.Errorf("encoding manifest.json: %w", err)
	}
	return append(entries, Entry{Name: "manifest.json", Size: int64(len(raw)), Data: raw}), nil
}

// WriteFile writes entries as a tar into a new file in dir (os.TempDir when
// empty) named after pattern (as os.CreateTemp) and returns its path. The
// tar is written under a hidden temp name and renamed once complete: on
// failure no file is left.
func WriteFile(dir, pattern string, entries []Entry) (string, error) {
	return WriteFileFrom(dir, pattern, func(w io.Writer) error { return Write(w, entries) })
}

// WriteFileFrom is WriteFile for an archive write produces.
func WriteFileFrom(dir, pattern string, write func(w io.Writer) error) (string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := userfile.CreateTemp(dir, ".imgutil-partial-*")
	if err != nil {
		return "", fmt.Errorf("creating archive: %w", err)
	}
	partial := f.Name()
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(partial)
		return "", fmt.Errorf("writing archive: %w", err)
	}
	final, err := userfile.CreateTemp(dir, pattern)
	if err == nil {
		err = final.Close()
	}
	if err == nil {
		err = os.Rename(partial, final.Name())
	}
	if err != nil {
		os.Remove(partial)
		if final != nil {
			os.Remove(final.Name())
		}
		return "", fmt.Errorf("writing archive: %w", err)
	}
	return filepath.Clean(final.Name()), nil
}

// Tag returns ref as a tag for a manifest.json RepoTags list
// (registry/repository:tag), or an error for a reference that is not a tag.
func Tag(ref string) (string, error) {
	t, err := name.NewTag(ref, name.WeakValidation)
	if err != nil {
		// "invalid reference format" is the daemon's words, which callers match.
		return "", fmt.Errorf("parsing tag %q: invalid reference format: %w: %w", ref, imgutil.ErrInvalidArgument, err)
	}
	return t.Name(), nil
}

// WriteImageFile writes a docker archive of one image (all layers written,
// tagged with tags) as a new file in the temp directory named after
// pattern, through WriteFile: no partial file is left on failure.
//
// report, when not nil, receives progress (see Reporting).
func WriteImageFile(rawConfig []byte, configDigest v1.Hash, layers []v1.Layer, tags []string, pattern string, report func(item string, done, total int64)) (string, error) {
	entries, err := Docker(rawConfig, configDigest, layers, tags, nil)
	if err != nil {
		return "", fmt.Errorf("saving image to file: %w", err)
	}
	return WriteFile("", pattern, Reporting(entries, report))
}

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
