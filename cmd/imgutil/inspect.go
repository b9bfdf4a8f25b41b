package main

import (
	"context"
	"encoding/json"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func runInspect(ctx context.Context, args []string) error {
	fs := newFlags("inspect", "TARGET", `Prints TARGET's config, layers and history as JSON.

Example:
  imgutil inspect oci:./app`)
	s, ts, err := parse(ctx, fs, args, 1)
	if err != nil {
		return err
	}
	defer s.close()
	img, done, err := s.read(ts[0])
	if err != nil {
		return err
	}
	defer done()
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	type layerOut struct {
		DiffID    string `json:"diffID"`
		Digest    string `json:"digest,omitempty"`
		Size      int64  `json:"size,omitempty"`
		MediaType string `json:"mediaType,omitempty"`
	}
	out := struct {
		Name    string       `json:"name"`
		Config  v1.Config    `json:"config"`
		OS      string       `json:"os"`
		Arch    string       `json:"architecture"`
		Created v1.Time      `json:"created"`
		Layers  []layerOut   `json:"layers"`
		History []v1.History `json:"history"`
	}{Name: ts[0].String(), Config: cfg.Config, OS: cfg.OS, Arch: cfg.Architecture, Created: cfg.Created, History: cfg.History}
	// Sizes come from the manifest where it is cheap (registry, layout);
	// a daemon image's would need its layers read.
	var m *v1.Manifest
	if ts[0].kind != "docker" {
		m, _ = img.Manifest()
	}
	for i, d := range cfg.RootFS.DiffIDs {
		l := layerOut{DiffID: d.String()}
		if m != nil && i < len(m.Layers) {
			l.Digest, l.Size, l.MediaType = m.Layers[i].Digest.String(), m.Layers[i].Size, string(m.Layers[i].MediaType)
		}
		out.Layers = append(out.Layers, l)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
