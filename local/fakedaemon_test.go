package local

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeDaemon answers the calls a save makes as one kind of daemon does,
// closely enough to test how a Store chooses its way and falls back:
// which archive each load carried, which it refused and in which words,
// whether an image's content is all there. Real daemons prove the rest.
type fakeDaemon struct {
	kind string // "classic", "podman" or "containerd"
	// recognisable: Podman names its images fully (docker.io/...), as
	// Podman 4 does; false hides that (a Podman learnt by a refusal).
	recognisable bool
	// refuse, when set, fails every load with this message.
	refuse string
	// drop is how many loads to come the daemon drops as a prune on the
	// containerd store does (their lease removed), naming nothing.
	drop int
	// hollow is how many loads to come the daemon names without their
	// content, as moby's containerd store may when a prune collected it
	// under the load: inspect lists no layers for the image.
	hollow int

	mu     sync.Mutex
	images map[string]*fakeImage // by ID
	names  map[string]string     // normalized name -> ID
	blobs  map[string][]byte     // layer content held, by diffID
	// lost are layers dropped since the images holding them were
	// inspected (pruned meanwhile).
	lost  map[string]bool
	loads []fakeLoad
	tags  int

	// os and osVersion are the daemon's platform and its images' (a
	// Windows daemon: "windows" and its build); "" is linux.
	os, osVersion string
	// foreign are the layers the daemon pulled as foreign (Windows base
	// layers), by diffID: its archives list them in LayerSources.
	foreign map[string]v1.Descriptor
	// saves counts the archives asked of the daemon; sent, the layers
	// loads carried, by diffID.
	saves int
	sent  map[string]int
}

type fakeImage struct {
	id        string
	diffIDs   []string
	rawConfig []byte
	manifest  []byte // containerd: the stored manifest, whose digest is the ID
	available bool
	hollow    bool // named without its content (see fakeDaemon.hollow)
}

// fakeLoad is what one load carried and how it ended.
type fakeLoad struct {
	oci    bool
	layers int // layer files or blobs in the archive
	err    string
}

func newFakeDaemon(kind string) *fakeDaemon {
	return &fakeDaemon{kind: kind, recognisable: true, images: map[string]*fakeImage{}, names: map[string]string{},
		blobs: map[string][]byte{}, lost: map[string]bool{}, foreign: map[string]v1.Descriptor{}, sent: map[string]int{}}
}

func fakeDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// fakeLayer is a layer tar holding one file.
func fakeLayer(name, content string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte(content))
	_ = tw.Close()
	return buf.Bytes()
}

// add stores an image of layers under name, as a plain load would.
func (f *fakeDaemon) add(name string, layers ...[]byte) string {
	cfg := v1.ConfigFile{OS: f.platform(), OSVersion: f.osVersion, Architecture: "amd64", RootFS: v1.RootFS{Type: "layers"}}
	var descs []v1.Descriptor
	for _, l := range layers {
		d := fakeDigest(l)
		h, _ := v1.NewHash(d)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, h)
		descs = append(descs, v1.Descriptor{MediaType: types.DockerUncompressedLayer, Size: int64(len(l)), Digest: h})
		f.blobs[d] = l
	}
	raw, _ := json.Marshal(cfg)
	cd, _ := v1.NewHash(fakeDigest(raw))
	m, _ := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.DockerManifestSchema2,
		Config: v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(raw)), Digest: cd}, Layers: descs})
	return f.store(raw, m, []string{name}, true)
}

func (f *fakeDaemon) platform() string {
	if f.os == "" {
		return "linux"
	}
	return f.os
}

// store records an image of rawConfig (and manifest m) named names.
func (f *fakeDaemon) store(rawConfig, m []byte, names []string, available bool) string {
	var cfg v1.ConfigFile
	_ = json.Unmarshal(rawConfig, &cfg)
	id := fakeDigest(rawConfig)
	if f.kind == "containerd" {
		id = fakeDigest(m)
	}
	img := &fakeImage{id: id, rawConfig: rawConfig, manifest: m, available: available}
	for _, d := range cfg.RootFS.DiffIDs {
		img.diffIDs = append(img.diffIDs, d.String())
	}
	if f.hollow > 0 {
		f.hollow--
		img.hollow = true
	}
	f.images[id] = img
	for _, n := range names {
		f.names[fakeName(n)] = id
	}
	return id
}

// fakeName is n as a daemon keys it: normalized, tagged.
func fakeName(n string) string {
	named, err := reference.ParseNormalizedNamed(n)
	if err != nil {
		return n
	}
	return reference.TagNameOnly(named).String()
}

func (f *fakeDaemon) lookup(ref string) (*fakeImage, bool) {
	if img, ok := f.images[ref]; ok {
		return img, true
	}
	img, ok := f.images[f.names[fakeName(ref)]]
	return img, ok
}

func (f *fakeDaemon) ServerVersion(context.Context, client.ServerVersionOptions) (client.ServerVersionResult, error) {
	v := "1.41"
	if f.kind == "containerd" {
		v = "1.48"
	}
	return client.ServerVersionResult{APIVersion: v, Os: f.platform(), Arch: "amd64"}, nil
}

func (f *fakeDaemon) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	var info system.Info
	if f.kind == "containerd" {
		info.DriverStatus = [][2]string{{"driver-type", "io.containerd.snapshotter.v1"}}
	}
	return client.SystemInfoResult{Info: info}, nil
}

func (f *fakeDaemon) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.lookup(ref)
	if !ok {
		return client.ImageInspectResult{}, cerrdefs.ErrNotFound.WithMessage("no such image: " + ref)
	}
	var cfg v1.ConfigFile
	_ = json.Unmarshal(img.rawConfig, &cfg)
	res := image.InspectResponse{ID: img.id, Os: cfg.OS, OsVersion: cfg.OSVersion, Architecture: "amd64", Config: &dockerspec.DockerOCIImageConfig{},
		RootFS: image.RootFS{Type: "layers", Layers: img.diffIDs}}
	if img.hollow {
		res.RootFS.Layers = nil
	}
	for n, id := range f.names {
		if id == img.id {
			if named, err := reference.ParseNormalizedNamed(n); err == nil && (f.kind != "podman" || !f.recognisable) {
				n = reference.FamiliarString(named) // as dockerd says it
			}
			res.RepoTags = append(res.RepoTags, n)
		}
	}
	if f.kind == "containerd" {
		available := img.available && !img.hollow
		for _, l := range img.diffIDs {
			available = available && !f.lost[l]
		}
		desc := ocispec.Descriptor{MediaType: string(types.DockerManifestSchema2), Digest: digest.Digest(img.id), Size: int64(len(img.manifest)),
			Annotations: map[string]string{manifestAnnotation: string(img.manifest)}}
		res.Descriptor = &desc
		res.Manifests = []image.ManifestSummary{{ID: img.id, Descriptor: desc, Available: available, Kind: image.ManifestKindImage}}
	}
	return client.ImageInspectResult{InspectResponse: res}, nil
}

func (f *fakeDaemon) ImageHistory(_ context.Context, ref string, _ ...client.ImageHistoryOption) (client.ImageHistoryResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.lookup(ref)
	if !ok {
		return client.ImageHistoryResult{}, cerrdefs.ErrNotFound.WithMessage("no such image: " + ref)
	}
	items := make([]image.HistoryResponseItem, len(img.diffIDs))
	return client.ImageHistoryResult{Items: items}, nil
}

func (f *fakeDaemon) ImageTag(_ context.Context, o client.ImageTagOptions) (client.ImageTagResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.lookup(o.Source)
	if !ok {
		return client.ImageTagResult{}, cerrdefs.ErrNotFound.WithMessage("no such image: " + o.Source)
	}
	f.tags++
	f.names[fakeName(o.Target)] = img.id
	return client.ImageTagResult{}, nil
}

func (f *fakeDaemon) ImageRemove(_ context.Context, ref string, _ client.ImageRemoveOptions) (client.ImageRemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.lookup(ref)
	if !ok {
		return client.ImageRemoveResult{}, cerrdefs.ErrNotFound.WithMessage("no such image: " + ref)
	}
	delete(f.names, fakeName(ref))
	res := client.ImageRemoveResult{Items: []image.DeleteResponse{{Untagged: ref}}}
	for _, id := range f.names {
		if id == img.id {
			return res, nil
		}
	}
	res.Items = append(res.Items, image.DeleteResponse{Deleted: img.id})
	return res, nil
}

// ImageSave writes a docker archive of the images' layers and configs.
func (f *fakeDaemon) ImageSave(_ context.Context, refs []string, _ ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	put := func(name string, b []byte) {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		_, _ = tw.Write(b)
	}
	f.saves++
	var manifest []map[string]any
	for _, ref := range refs {
		img, ok := f.lookup(ref)
		if !ok {
			return nil, cerrdefs.ErrNotFound.WithMessage("no such image: " + ref)
		}
		var layers []string
		sources := map[string]v1.Descriptor{}
		for i, d := range img.diffIDs {
			name := "blobs/sha256/" + strings.TrimPrefix(d, "sha256:")
			if f.os == "windows" {
				// As Windows daemons write (the legacy layout): a
				// directory per layer, foreign layers' bytes included.
				name = strings.TrimPrefix(fakeDigest([]byte(fmt.Sprint(d, i))), "sha256:") + "/layer.tar"
			}
			put(name, f.blobs[d])
			layers = append(layers, name)
			if desc, ok := f.foreign[d]; ok {
				sources[d] = desc
			}
		}
		cfg := "blobs/sha256/" + strings.TrimPrefix(fakeDigest(img.rawConfig), "sha256:")
		if f.os == "windows" {
			cfg = strings.TrimPrefix(fakeDigest(img.rawConfig), "sha256:") + ".json"
		}
		put(cfg, img.rawConfig)
		m := map[string]any{"Config": cfg, "RepoTags": []string{ref}, "Layers": layers}
		if len(sources) > 0 {
			m["LayerSources"] = sources
		}
		manifest = append(manifest, m)
	}
	m, _ := json.Marshal(manifest)
	put("manifest.json", m)
	_ = tw.Close()
	return io.NopCloser(&buf), nil
}

// ImageLoad reads the archive whole and takes it or refuses it as the
// fake's kind of daemon does; the answer is a JSON stream, as daemons give.
func (f *fakeDaemon) ImageLoad(_ context.Context, in io.Reader, _ ...client.ImageLoadOption) (client.ImageLoadResult, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(in)
	var rerr error
	for {
		hdr, err := tr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rerr = err
			}
			break
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			rerr = err
			break
		}
		files[hdr.Name] = b
	}
	_, _ = io.Copy(io.Discard, in) // read to the end, as a daemon does
	f.mu.Lock()
	defer f.mu.Unlock()
	var load fakeLoad
	err := rerr
	switch {
	case err != nil:
	case f.drop > 0:
		f.drop--
		err = fmt.Errorf(`failed to ingest "blobs/sha256/0123": failed commit on ref "tar-blobs/sha256/0123": commit failed: lease does not exist: not found`)
	case f.refuse != "":
		for n, b := range files {
			if strings.HasSuffix(n, ".tar") || (strings.HasPrefix(n, "blobs/") && bytes.HasPrefix(b[min(len(b), 257):], []byte("ustar"))) {
				load.layers++
			}
		}
		err = fmt.Errorf("%s", f.refuse)
	case files["index.json"] != nil && (files["manifest.json"] == nil || f.kind == "containerd"):
		// Both in one archive: the containerd store reads the OCI layout,
		// the others manifest.json.
		load.oci = true
		err = f.loadOCI(files, &load)
	default:
		err = f.loadDocker(files, &load)
	}
	body := `{"stream":"Loaded image\n"}` + "\n"
	if err != nil {
		load.err = err.Error()
		msg, _ := json.Marshal(err.Error())
		body = fmt.Sprintf(`{"errorDetail":{"message":%s},"error":%s}`+"\n", msg, msg)
	}
	f.loads = append(f.loads, load)
	return io.NopCloser(strings.NewReader(body)), nil
}

// held reports whether the daemon holds the layer diffID.
func (f *fakeDaemon) held(diffID string) bool { return f.blobs[diffID] != nil && !f.lost[diffID] }

func (f *fakeDaemon) loadDocker(files map[string][]byte, load *fakeLoad) error {
	var ms []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &ms); err != nil || len(ms) != 1 {
		return fmt.Errorf("invalid manifest.json: %w", err)
	}
	m := ms[0]
	rawConfig := files[m.Config]
	var cfg v1.ConfigFile
	if err := json.Unmarshal(rawConfig, &cfg); err != nil || len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("invalid config %s", m.Config)
	}
	if cfg.OS != f.platform() {
		return fmt.Errorf("image operating system %q cannot be used on this platform", cfg.OS)
	}
	for i, p := range m.Layers {
		if files[p] != nil {
			load.layers++
			f.sent[cfg.RootFS.DiffIDs[i].String()]++
		}
	}
	for i, p := range m.Layers {
		diffID := cfg.RootFS.DiffIDs[i].String()
		if b := files[p]; b != nil {
			f.blobs[fakeDigest(b)] = b
			continue
		}
		switch {
		case f.kind == "podman":
			return fmt.Errorf("payload does not match any of the supported image formats: layer tarfiles are missing")
		case f.kind == "containerd":
			return fmt.Errorf("failed to resolve layers: %s: not found", diffID)
		case !f.held(diffID):
			return fmt.Errorf("open /var/lib/docker/tmp/docker-import-42/%s: no such file or directory", path.Dir(p))
		}
	}
	f.store(rawConfig, []byte("docker archive of "+fakeDigest(rawConfig)), m.RepoTags, true)
	return nil
}

func (f *fakeDaemon) loadOCI(files map[string][]byte, load *fakeLoad) error {
	if f.kind == "classic" {
		return fmt.Errorf("unsupported archive: no manifest.json")
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(files["index.json"], &idx); err != nil || len(idx.Manifests) != 1 {
		return fmt.Errorf("invalid index.json: %w", err)
	}
	desc := idx.Manifests[0]
	blob := func(h v1.Hash) []byte { return files["blobs/"+h.Algorithm+"/"+h.Hex] }
	rawManifest := blob(desc.Digest)
	var m v1.Manifest
	if err := json.Unmarshal(rawManifest, &m); err != nil {
		return fmt.Errorf("invalid manifest: %w", err)
	}
	rawConfig := blob(m.Config.Digest)
	var cfg v1.ConfigFile
	if err := json.Unmarshal(rawConfig, &cfg); err != nil || len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("invalid config")
	}
	for _, l := range m.Layers {
		if blob(l.Digest) != nil {
			load.layers++
		}
	}
	available := true
	for i, l := range m.Layers {
		diffID := cfg.RootFS.DiffIDs[i].String()
		if b := blob(l.Digest); b != nil {
			f.blobs[fakeDigest(b)] = b
			continue
		}
		switch {
		case f.held(diffID):
		case f.kind == "podman":
			return fmt.Errorf("reading blob %s: no such file or directory", l.Digest)
		default:
			// The containerd store takes it, and says so in Available.
			available = false
		}
	}
	name := desc.Annotations["io.containerd.image.name"]
	if name == "" {
		name = desc.Annotations["org.opencontainers.image.ref.name"]
	}
	f.store(rawConfig, rawManifest, []string{name}, available)
	return nil
}
