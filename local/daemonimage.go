package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/api/types/image"

	"github.com/imgbridge/imgutil"
)

// daemonImage is an image in the daemon as ImageInspect shows it: its
// config is rebuilt from the inspect result, its layers are read from the
// daemon only when their bytes are asked for.
type daemonImage struct {
	store   *Store
	id      string
	cfg     *v1.ConfigFile
	rawCfg  []byte
	layers  []*daemonLayer
	inspect image.InspectResponse

	// mu guards the manifest, built on demand (it needs every layer's size).
	mu       sync.Mutex
	manifest []byte

	// storedMu guards stored: the layer descriptors the containerd image
	// store holds for the image, once learnt.
	storedMu sync.Mutex
	stored   []v1.Descriptor

	// descMu guards desc: the descriptor of the manifest the containerd
	// image store holds the image by, once asked.
	descMu sync.Mutex
	desc   *v1.Descriptor
}

var _ v1.Image = (*daemonImage)(nil)

// newDaemonImage rebuilds the config of an inspected image as the existing
// library does, so that the same edits give the same config bytes (and, on
// the classic store, the same image ID): architecture, author, created,
// os, os version, variant, the layers, twelve fields of the runtime config
// (not docker_version, container or container_config, which a real pack
// build showed it leaves out), and the history the daemon lists, kept only
// when it has one entry per layer.
func newDaemonImage(s *Store, inspect image.InspectResponse, history []image.HistoryResponseItem) (*daemonImage, error) {
	cfg := &v1.ConfigFile{
		Author: inspect.Author, Architecture: inspect.Architecture, Variant: inspect.Variant,
		OS: inspect.Os, OSVersion: inspect.OsVersion, RootFS: v1.RootFS{Type: "layers"},
	}
	if inspect.Config != nil {
		raw, err := json.Marshal(inspect.Config)
		if err != nil {
			return nil, fmt.Errorf("reading image config: %w", err)
		}
		var all v1.Config
		if err := json.Unmarshal(raw, &all); err != nil {
			return nil, fmt.Errorf("reading image config: %w", err)
		}
		// Only what the existing library keeps of it (the same edits then
		// give the same config bytes, so the same image ID).
		cfg.Config = v1.Config{
			Cmd: all.Cmd, Entrypoint: all.Entrypoint, Env: all.Env, ExposedPorts: all.ExposedPorts,
			Healthcheck: all.Healthcheck, Labels: all.Labels, OnBuild: all.OnBuild, Shell: all.Shell,
			StopSignal: all.StopSignal, User: all.User, Volumes: all.Volumes, WorkingDir: all.WorkingDir,
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, inspect.Created); err == nil {
		cfg.Created = v1.Time{Time: t}
	}
	for _, l := range inspect.RootFS.Layers {
		h, err := v1.NewHash(l)
		if err != nil {
			return nil, fmt.Errorf("reading image layers: %w", err)
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, h)
	}
	// The daemon lists history newest first, and does not say which
	// entries made no layer: a history with more entries than layers is
	// not kept (the existing library's rule, which saved image IDs follow).
	for _, h := range slices.Backward(history) {
		cfg.History = append(cfg.History, v1.History{
			Created: v1.Time{Time: time.Unix(h.Created, 0).UTC()}, CreatedBy: h.CreatedBy, Comment: h.Comment,
		})
	}
	cfg.History = imgutil.NormalizedHistory(cfg.History, len(cfg.RootFS.DiffIDs))
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding image config: %w", err)
	}
	d := &daemonImage{store: s, id: inspect.ID, cfg: cfg, rawCfg: raw, inspect: inspect}
	for i, diffID := range cfg.RootFS.DiffIDs {
		d.layers = append(d.layers, &daemonLayer{image: d, diffID: diffID, index: i, mediaType: types.DockerUncompressedLayer})
	}
	return d, nil
}

// taggedAs reports whether the daemon holds the image under name (as the
// daemon normalizes names: docker.io/library/, Podman's localhost/).
func (d *daemonImage) taggedAs(name string) bool {
	want, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return false
	}
	want = reference.TagNameOnly(want)
	for _, t := range d.inspect.RepoTags {
		have, err := reference.ParseNormalizedNamed(t)
		if err != nil {
			continue
		}
		if have.String() == want.String() || strings.TrimPrefix(reference.FamiliarString(have), "localhost/") == reference.FamiliarString(want) {
			return true
		}
	}
	return false
}

// ManifestAnnotations tells the editable core there are none to keep,
// without building a manifest (which would read every layer).
func (d *daemonImage) ManifestAnnotations() map[string]string { return nil }

func (d *daemonImage) MediaType() (types.MediaType, error) { return types.DockerManifestSchema2, nil }
func (d *daemonImage) ConfigFile() (*v1.ConfigFile, error) { return d.cfg.DeepCopy(), nil }
func (d *daemonImage) RawConfigFile() ([]byte, error)      { return d.rawCfg, nil }
func (d *daemonImage) ConfigName() (v1.Hash, error)        { return sha256Of(d.rawCfg), nil }

func (d *daemonImage) Layers() ([]v1.Layer, error) {
	out := make([]v1.Layer, len(d.layers))
	for i, l := range d.layers {
		out[i] = l
	}
	return out, nil
}

func (d *daemonImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for _, l := range d.layers {
		if l.diffID == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("image %s: layer %s: %w", d.id, h, errLayerNotFound(h))
}

// LayerByDigest finds a layer by digest; a daemon layer's digest is its diffID.
func (d *daemonImage) LayerByDigest(h v1.Hash) (v1.Layer, error) { return d.LayerByDiffID(h) }

func (d *daemonImage) RawManifest() ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.manifest != nil {
		return d.manifest, nil
	}
	raw, err := d.manifestFor(d.rawCfg)
	if err == nil {
		d.manifest = raw
	}
	return raw, err
}

// manifestFor is the manifest of the image's layers (uncompressed, as read
// from the daemon) with the config rawCfg.
func (d *daemonImage) manifestFor(rawCfg []byte) ([]byte, error) {
	if err := d.store.prefetch(context.Background(), d.layersAsV1()); err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: types.DockerManifestSchema2,
		Config: v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(rawCfg)), Digest: sha256Of(rawCfg)},
	}
	for _, l := range d.layers {
		size, err := l.Size()
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.DockerUncompressedLayer, Size: size, Digest: l.diffID})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return raw, nil
}

// AsStored returns the image with the config the daemon holds, byte for
// byte (read from its archive with the layers), where the daemonImage has
// one rebuilt from inspect: a copy kept as it is (PreserveDigest) keeps
// the image's config digest, its ID on classic stores and Podman.
func (d *daemonImage) AsStored() (v1.Image, error) {
	raw, err := d.store.storedConfig(context.Background(), d)
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing the config of image %s: %w", d.id, err)
	}
	if !slices.Equal(cfg.RootFS.DiffIDs, d.cfg.RootFS.DiffIDs) {
		return nil, fmt.Errorf("the stored config of image %s lists other layers than its inspect", d.id)
	}
	manifest, err := d.manifestFor(raw)
	if err != nil {
		return nil, err
	}
	return &storedImage{daemonImage: d, rawCfg: raw, cfg: cfg, manifest: manifest}, nil
}

// storedImage is a daemon image with its stored config (see AsStored).
type storedImage struct {
	*daemonImage
	rawCfg   []byte
	cfg      *v1.ConfigFile
	manifest []byte
}

func (s *storedImage) ConfigFile() (*v1.ConfigFile, error) { return s.cfg.DeepCopy(), nil }
func (s *storedImage) RawConfigFile() ([]byte, error)      { return s.rawCfg, nil }
func (s *storedImage) ConfigName() (v1.Hash, error)        { return sha256Of(s.rawCfg), nil }
func (s *storedImage) RawManifest() ([]byte, error)        { return s.manifest, nil }
func (s *storedImage) Digest() (v1.Hash, error)            { return sha256Of(s.manifest), nil }
func (s *storedImage) Size() (int64, error)                { return int64(len(s.manifest)), nil }

func (s *storedImage) Manifest() (*v1.Manifest, error) {
	return v1.ParseManifest(bytes.NewReader(s.manifest))
}

func (d *daemonImage) layersAsV1() []v1.Layer {
	ls, _ := d.Layers()
	return ls
}

func (d *daemonImage) Manifest() (*v1.Manifest, error) {
	raw, err := d.RawManifest()
	if err != nil {
		return nil, err
	}
	return v1.ParseManifest(bytesReader(raw))
}

func (d *daemonImage) Digest() (v1.Hash, error) {
	raw, err := d.RawManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	return sha256Of(raw), nil
}

func (d *daemonImage) Size() (int64, error) {
	raw, err := d.RawManifest()
	return int64(len(raw)), err
}

// daemonLayer is a layer of a daemon image: its diffID is known, its bytes
// are read from the daemon on first use, uncompressed.
type daemonLayer struct {
	image  *daemonImage
	diffID v1.Hash
	// index is the layer's position in its image.
	index int
	// mediaType is an uncompressed layer type (Docker's unless retyped).
	mediaType types.MediaType
}

var _ v1.Layer = (*daemonLayer)(nil)

func (l *daemonLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Digest of an uncompressed layer is its diffID.
func (l *daemonLayer) Digest() (v1.Hash, error) { return l.diffID, nil }

func (l *daemonLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

// WithMediaType returns the same layer under another (uncompressed) media
// type: it stays a daemon layer, so the Store still recognizes it.
func (l *daemonLayer) WithMediaType(mt types.MediaType) v1.Layer {
	c := *l
	c.mediaType = mt
	return &c
}

func (l *daemonLayer) file() (layerFile, error) {
	if lf, ok := l.image.store.fetcher.file(l.diffID); ok {
		return lf, nil
	}
	if err := l.image.store.prefetch(context.Background(), []v1.Layer{l}); err != nil {
		return layerFile{}, err
	}
	lf, ok := l.image.store.fetcher.file(l.diffID)
	if !ok {
		return layerFile{}, fmt.Errorf("layer %s: %w", l.diffID, errStoreClosed)
	}
	return lf, nil
}

// Prefetch reads from the daemon, one ImageSave per image, every daemon
// layer among layers not held yet (the editable core calls it before it
// describes the layers of a manifest).
func (l *daemonLayer) Prefetch(layers []v1.Layer) error {
	return l.image.store.prefetch(context.Background(), layers)
}

// UncompressedSize reads the layer from the daemon if it is not held yet.
func (l *daemonLayer) UncompressedSize() (int64, error) {
	lf, err := l.file()
	return lf.size, err
}

func (l *daemonLayer) Size() (int64, error) { return l.UncompressedSize() }

func (l *daemonLayer) Uncompressed() (io.ReadCloser, error) {
	lf, err := l.file()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(lf.path)
	if err != nil {
		return nil, fmt.Errorf("opening layer %s: %w", l.diffID, err)
	}
	return f, nil
}

// Source is the layer file, once read from the daemon (hashed then: it
// is trusted by its name), in either form (both are uncompressed).
func (l *daemonLayer) Source(bool) (string, v1.Hash, bool) {
	lf, ok := l.image.store.fetcher.file(l.diffID)
	return lf.path, v1.Hash{}, ok
}

// ForeignSource is where the layer comes from when the daemon holds it as
// foreign (a Windows base layer), once an archive of the daemon said so.
func (l *daemonLayer) ForeignSource() (v1.Descriptor, bool) {
	return l.image.store.fetcher.source(l.diffID)
}

// Compressed returns the uncompressed bytes: the layer's media type says so.
func (l *daemonLayer) Compressed() (io.ReadCloser, error) { return l.Uncompressed() }

func sha256Of(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}
