package archive

import (
	"encoding/json"
	"fmt"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/built"
	"github.com/imgbridge/imgutil/internal/verified"
)

// DockerManifest is one image of a docker-archive manifest.json (what
// loads read, and what exports of daemons write).
type DockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
	// LayerSources are the foreign layers (Windows base layers whose
	// source is elsewhere), by diffID, as Docker writes them.
	LayerSources map[v1.Hash]v1.Descriptor `json:",omitempty"`
}

// Foreign is a layer a daemon holds as foreign (a Windows base layer it
// pulled from its source), when it knows.
type Foreign interface {
	ForeignSource() (v1.Descriptor, bool)
}

// foreignSource is the source of l when it is a foreign layer: as its
// holder says, or as its media type says (a non-distributable layer of a
// registry's or a layout's image).
func foreignSource(l v1.Layer) (v1.Descriptor, bool, error) {
	if f, ok := l.(Foreign); ok {
		d, ok := f.ForeignSource()
		return d, ok, nil
	}
	mt, err := l.MediaType()
	if err != nil || mt.IsDistributable() {
		return v1.Descriptor{}, false, nil
	}
	d, err := partial.Descriptor(l)
	if err != nil {
		return v1.Descriptor{}, false, fmt.Errorf("describing foreign layer: %w", err)
	}
	return *d, true, nil
}

// Source is a layer whose bytes, in one form, are a file as it is (a
// layer file, a layout blob): the path, and the sha256 the bytes must have
// when the file is not trusted by its name (zero when it is).
type Source interface {
	Source(compressed bool) (path string, verify v1.Hash, ok bool)
}

// Rooted is a Source whose file must be reached within a directory (see
// Entry.Within).
type Rooted interface {
	SourceRoot() string
}

// Recorded is a Source whose owner keeps records of files checked (see
// Entry.Records).
type Recorded interface {
	Records() *verified.Records
}

// layerEntries returns the archive entries of layers, all in one form:
// uncompressed tars when every layer knows its uncompressed size without
// work (a daemon's layers, new layer files), else the stored (compressed)
// blobs, which compressed says. Some readers of docker archives assume one
// form for all layers.
func layerEntries(layers []v1.Layer) (entries []Entry, compressed bool, err error) {
	entries = make([]Entry, len(layers))
	sizes := make([]int64, len(layers))
	for i, l := range layers {
		u, ok := l.(interface{ UncompressedSize() (int64, error) })
		if !ok {
			compressed = true
			break
		}
		size, err := u.UncompressedSize()
		if err != nil {
			return nil, false, fmt.Errorf("layer %d: %w", i, err)
		}
		sizes[i] = size
	}
	for i, l := range layers {
		if compressed {
			e, err := compressedEntry(l)
			if err != nil {
				return nil, false, fmt.Errorf("layer %d: %w", i, err)
			}
			entries[i] = e
			continue
		}
		d, err := l.DiffID()
		if err != nil {
			return nil, false, fmt.Errorf("layer %d: getting diff ID: %w", i, err)
		}
		entries[i] = Entry{Name: blobName(d), Size: sizes[i], Open: l.Uncompressed}
		fromFile(&entries[i], l, false)
	}
	return entries, compressed, nil
}

// fromFile makes e copy the file l's bytes are in, when there is one.
func fromFile(e *Entry, l v1.Layer, compressed bool) {
	if s, ok := l.(Source); ok {
		if path, verify, ok := s.Source(compressed); ok {
			e.Path, e.Verify, e.Open = path, verify, nil
			if r, ok := l.(Rooted); ok {
				e.Within = r.SourceRoot()
			}
			if r, ok := l.(Recorded); ok {
				e.Records = r.Records()
			}
		}
	}
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
	e := Entry{Name: blobName(d), Size: size, Open: l.Compressed}
	fromFile(&e, l, true)
	return e, nil
}

func blobName(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// Docker returns the entries of a docker-archive (what `docker load` reads)
// holding one image: its config, its layers and a manifest.json that tags it
// with tags. A layer shared by two positions is written once. Layers for
// which omit is true are listed in manifest.json but not written: a daemon
// that holds their chain never reads them (omit may be nil).
func Docker(rawConfig []byte, configDigest v1.Hash, layers []v1.Layer, tags []string, omit func(i int) bool) ([]Entry, error) {
	entries, _, err := docker(rawConfig, configDigest, layers, tags, omit)
	return entries, err
}

// docker is Docker; it also says whether the layers were written as stored
// (compressed, see layerEntries).
func docker(rawConfig []byte, configDigest v1.Hash, layers []v1.Layer, tags []string, omit func(i int) bool) ([]Entry, bool, error) {
	entries := []Entry{{Name: blobName(configDigest), Size: int64(len(rawConfig)), Data: rawConfig}}
	m := DockerManifest{Config: blobName(configDigest), RepoTags: tags, Layers: make([]string, len(layers))}
	var sent []v1.Layer
	var sentAt []int
	for i, l := range layers {
		if omit != nil && omit(i) {
			d, err := l.DiffID()
			if err != nil {
				return nil, false, fmt.Errorf("layer %d: getting diff ID: %w", i, err)
			}
			m.Layers[i] = blobName(d)
			continue
		}
		sent = append(sent, l)
		sentAt = append(sentAt, i)
	}
	les, compressed, err := layerEntries(sent)
	if err != nil {
		return nil, false, err
	}
	seen := map[string]bool{entries[0].Name: true}
	for j, e := range les {
		m.Layers[sentAt[j]] = e.Name
		if !seen[e.Name] {
			seen[e.Name] = true
			entries = append(entries, e)
		}
	}
	for i, l := range layers {
		src, ok, err := foreignSource(l)
		if err != nil {
			return nil, false, fmt.Errorf("layer %d: %w", i, err)
		}
		if !ok {
			continue
		}
		d, err := l.DiffID()
		if err != nil {
			return nil, false, fmt.Errorf("layer %d: getting diff ID: %w", i, err)
		}
		if m.LayerSources == nil {
			m.LayerSources = map[v1.Hash]v1.Descriptor{}
		}
		m.LayerSources[d] = src
	}
	raw, err := json.Marshal([]DockerManifest{m})
	if err != nil {
		return nil, false, fmt.Errorf("encoding manifest.json: %w", err)
	}
	return append(entries, Entry{Name: "manifest.json", Size: int64(len(raw)), Data: raw}), compressed, nil
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

// ImageEntries returns the entries of the archive WriteImageFile writes.
func ImageEntries(b *built.Built, tags []string) ([]Entry, error) {
	entries, compressed, err := docker(b.RawConfig, b.ConfigDigest(), b.Layers, tags, nil)
	if err != nil || !compressed {
		return entries, err
	}
	rawManifest, err := b.RawManifest()
	if err != nil {
		return nil, err
	}
	md := built.SHA256(rawManifest)
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	desc := v1.Descriptor{MediaType: b.ManifestType(), Size: int64(len(rawManifest)), Digest: md}
	for _, t := range tags {
		d := desc
		d.Annotations = map[string]string{"io.containerd.image.name": containerdName(t), "org.opencontainers.image.ref.name": refName(t)}
		idx.Manifests = append(idx.Manifests, d)
	}
	if len(tags) == 0 {
		idx.Manifests = append(idx.Manifests, desc)
	}
	rawIndex, err := json.Marshal(idx)
	if err != nil {
		return nil, fmt.Errorf("encoding index.json: %w", err)
	}
	layout := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	return append(entries,
		Entry{Name: blobName(md), Size: int64(len(rawManifest)), Data: rawManifest},
		Entry{Name: "oci-layout", Size: int64(len(layout)), Data: layout},
		Entry{Name: "index.json", Size: int64(len(rawIndex)), Data: rawIndex},
	), nil
}

// containerdName is tag as a containerd image store names images
// (docker.io/library/name:tag).
func containerdName(tag string) string {
	named, err := reference.ParseNormalizedNamed(tag)
	if err != nil {
		return tag
	}
	return reference.TagNameOnly(named).String()
}

// refName is the tag part of a tag (what an OCI layout's ref name holds).
func refName(tag string) string {
	if t, err := name.NewTag(tag, name.WeakValidation); err == nil {
		return t.TagStr()
	}
	return tag
}
