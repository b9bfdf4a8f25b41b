package main

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/api/types/image"

	"github.com/imgbridge/imgutil/local"
)

type layerOut struct {
	DiffID    string `json:"diffID"`
	Digest    string `json:"digest,omitempty"`
	Size      int64  `json:"size,omitempty"`
	MediaType string `json:"mediaType,omitempty"`
	// UncompressedSize is what a daemon says the layer takes, where the
	// stored size is not known without reading the layer.
	UncompressedSize int64  `json:"uncompressedSize,omitempty"`
	CreatedBy        string `json:"createdBy,omitempty"`
}

type platformOut struct {
	OS        string `json:"os"`
	Arch      string `json:"architecture"`
	Variant   string `json:"variant,omitempty"`
	OSVersion string `json:"os.version,omitempty"`
	Digest    string `json:"digest,omitempty"`
}

func runInspect(ctx context.Context, args []string) error {
	fs := newFlags("inspect", "TARGET", `Prints TARGET's config, platform, layers (digest and size where the store
knows them without reading the layer) and history as JSON. For an index in a
registry or a layout, "platforms" lists the images it holds.

Example:
  imgutil inspect oci:./app`)
	s, ts, err := parse(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	defer s.close()
	t := ts[0]
	img, done, err := s.read(t)
	if err != nil {
		return err
	}
	defer done()
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	out := struct {
		Name      string        `json:"name"`
		Config    v1.Config     `json:"config"`
		Platform  platformOut   `json:"platform"`
		Platforms []platformOut `json:"platforms,omitempty"`
		OS        string        `json:"os"`
		Arch      string        `json:"architecture"`
		Created   v1.Time       `json:"created"`
		Layers    []layerOut    `json:"layers"`
		History   []v1.History  `json:"history"`
	}{Name: t.String(), Config: cfg.Config, OS: cfg.OS, Arch: cfg.Architecture, Created: cfg.Created, History: cfg.History,
		Platform: platformOut{OS: cfg.OS, Arch: cfg.Architecture, Variant: cfg.Variant, OSVersion: cfg.OSVersion}}
	for _, d := range cfg.RootFS.DiffIDs {
		out.Layers = append(out.Layers, layerOut{DiffID: d.String()})
	}
	// attributed says which history steps made the layers is known.
	attributed := true
	switch t.kind {
	case "docker":
		// The daemon's own history: every step (those that made no
		// layer too), what made each layer and its size.
		cli, err := s.docker()
		if err != nil {
			return err
		}
		if h, err := cli.ImageHistory(s.ctx, t.name); err == nil {
			out.History, attributed = daemonHistory(h.Items, out.Layers)
		}
		// A multi-platform image (the containerd image store): each
		// platform with its manifest digest.
		store := local.NewStore(cli)
		if ps, err := store.Platforms(s.ctx, t.name); err == nil && len(ps) > 1 {
			for _, p := range ps {
				out.Platforms = append(out.Platforms, platformOut{OS: p.Platform.OS, Arch: p.Platform.Architecture,
					Variant: p.Platform.Variant, OSVersion: p.Platform.OSVersion, Digest: p.Digest.String()})
			}
		}
		_ = store.Close()
	default:
		// Digests and sizes are in the manifest (registry, layout,
		// containerd: no layer is read).
		if m, err := img.Manifest(); err == nil && len(m.Layers) == len(out.Layers) {
			for i, l := range m.Layers {
				out.Layers[i].Digest, out.Layers[i].Size, out.Layers[i].MediaType = l.Digest.String(), l.Size, string(l.MediaType)
			}
		}
		if d, err := img.Digest(); err == nil {
			out.Platform.Digest = d.String()
		}
		out.Platforms = indexPlatforms(s.ctx, t)
		if t.kind == "containerd" {
			out.Platforms = s.containerdPlatforms(t)
		}
	}
	// What made each layer, from the history (its entries that made one).
	i := 0
	for _, h := range out.History {
		if !attributed || h.EmptyLayer || i >= len(out.Layers) {
			continue
		}
		out.Layers[i].CreatedBy = h.CreatedBy
		i++
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// daemonHistory is the history a daemon lists (newest first) as a config
// has it, oldest first, each entry that made no layer marked so; the
// sizes of the entries that made layers go to layers. A daemon does not
// say which entries made layers: the entries of non-zero size are taken
// for them when they are as many as the layers (every entry, when there
// are as many entries as layers); else which made which is not known
// (a layer of 0 bytes), and ok is false.
func daemonHistory(items []image.HistoryResponseItem, layers []layerOut) (out []v1.History, ok bool) {
	items = slices.Clone(items)
	slices.Reverse(items)
	sized := 0
	for _, it := range items {
		if it.Size > 0 {
			sized++
		}
	}
	byLayer := sized == len(layers) || len(items) == len(layers)
	out = make([]v1.History, 0, len(items))
	i := 0
	for _, it := range items {
		h := v1.History{Created: v1.Time{Time: time.Unix(it.Created, 0).UTC()}, CreatedBy: it.CreatedBy, Comment: it.Comment}
		makesLayer := len(items) == len(layers) || it.Size > 0
		if byLayer && makesLayer && i < len(layers) {
			layers[i].UncompressedSize = it.Size
			i++
		} else if byLayer {
			h.EmptyLayer = true
		}
		out = append(out, h)
	}
	return out, byLayer
}

// indexPlatforms lists the images of t when it is an index (a registry's
// or a layout's), nil otherwise.
func indexPlatforms(ctx context.Context, t target) []platformOut {
	idx := sourceIndex(ctx, t)
	if idx == nil {
		return nil
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil
	}
	return platformsIn(m)
}

// platformsIn lists the platforms of the index m with their digests
// (attestation manifests, unknown/unknown, are none).
func platformsIn(m *v1.IndexManifest) []platformOut {
	var out []platformOut
	for _, d := range m.Manifests {
		if d.Platform == nil || d.Platform.OS == "unknown" || !d.MediaType.IsImage() {
			continue
		}
		out = append(out, platformOut{OS: d.Platform.OS, Arch: d.Platform.Architecture, Variant: d.Platform.Variant,
			OSVersion: d.Platform.OSVersion, Digest: d.Digest.String()})
	}
	return out
}

// sourceIndex is t as a multi-platform image (a registry's or a layout's
// index of two images or more), nil when it is not one.
func sourceIndex(ctx context.Context, t target) v1.ImageIndex {
	var idx v1.ImageIndex
	switch t.kind {
	case "registry":
		ref, err := name.ParseReference(t.name, name.WeakValidation)
		if err != nil {
			return nil
		}
		desc, err := remote.Get(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
		if err != nil || !desc.MediaType.IsIndex() {
			return nil
		}
		if idx, err = desc.ImageIndex(); err != nil {
			return nil
		}
	case "oci":
		p, err := ggcrlayout.FromPath(t.name)
		if err != nil {
			return nil
		}
		if idx, err = p.ImageIndex(); err != nil {
			return nil
		}
		// index.json lists the layout's images, or holds the index.
		if m, err := idx.IndexManifest(); err == nil && len(m.Manifests) == 1 && m.Manifests[0].MediaType.IsIndex() {
			if idx, err = idx.ImageIndex(m.Manifests[0].Digest); err != nil {
				return nil
			}
		}
	default:
		return nil
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil
	}
	// Attestation manifests (unknown/unknown, as buildx adds) are not
	// platforms: one image with its attestation is one platform.
	images := 0
	for _, d := range m.Manifests {
		if d.MediaType.IsImage() && d.Platform != nil && d.Platform.OS != "unknown" {
			images++
		}
	}
	if images < 2 {
		return nil // one image: its platform says it all
	}
	return idx
}

// containerdPlatforms lists the platforms of t, a containerd image, when
// its record names an index (of two images or more), with their manifest
// digests; nil otherwise.
func (s *session) containerdPlatforms(t target) []platformOut {
	c, err := s.containerd()
	if err != nil {
		return nil
	}
	n, err := normalizedName(t.name)
	if err != nil {
		return nil
	}
	ctx := namespaces.WithNamespace(s.ctx, t.ns)
	rec, err := c.ImageService().Get(ctx, n)
	if err != nil || !images.IsIndexType(rec.Target.MediaType) {
		return nil
	}
	raw, err := content.ReadBlob(ctx, c.ContentStore(), rec.Target)
	if err != nil {
		return nil
	}
	var im v1.IndexManifest
	if json.Unmarshal(raw, &im) != nil {
		return nil
	}
	out := platformsIn(&im)
	if len(out) < 2 {
		return nil
	}
	return out
}

// normalizedName is n as containerd keeps image names
// (docker.io/library/app:latest), as the containerd backend saves them.
func normalizedName(n string) (string, error) {
	named, err := reference.ParseNormalizedNamed(n)
	if err != nil {
		return "", err
	}
	return reference.TagNameOnly(named).String(), nil
}
