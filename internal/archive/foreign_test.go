package archive

import (
	"encoding/json"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// A non-distributable layer (a Windows base layer from a registry) is
// listed in the docker archive's LayerSources with its descriptor, URLs
// included, as Docker writes it; other layers are not.
func TestDockerListsForeignLayers(t *testing.T) {
	plain, err := random.Layer(64, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	base, err := random.Layer(64, types.DockerForeignLayer)
	if err != nil {
		t.Fatal(err)
	}
	urls := []string{"https://mcr.microsoft.com/v2/windows/servercore/blobs/x"}
	var foreign v1.Layer = withURLs{Layer: base, urls: urls}
	cfg := []byte(`{}`)
	entries, err := Docker(cfg, v1.Hash{Algorithm: "sha256", Hex: "00"}, []v1.Layer{foreign, plain}, []string{"example.com/app:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ms []DockerManifest
	if err := json.Unmarshal(entries[len(entries)-1].Data, &ms); err != nil {
		t.Fatal(err)
	}
	fd, _ := foreign.DiffID()
	digest, _ := foreign.Digest()
	src, ok := ms[0].LayerSources[fd]
	if len(ms[0].LayerSources) != 1 || !ok {
		t.Fatalf("LayerSources = %+v, want the foreign layer only", ms[0].LayerSources)
	}
	if src.MediaType != types.DockerForeignLayer || src.Digest != digest || len(src.URLs) != 1 || src.URLs[0] != urls[0] {
		t.Errorf("source %+v", src)
	}
}

// withURLs describes a layer as a registry's manifest does, URLs and all.
type withURLs struct {
	v1.Layer
	urls []string
}

func (w withURLs) Descriptor() (*v1.Descriptor, error) {
	d, err := w.Digest()
	if err != nil {
		return nil, err
	}
	size, err := w.Size()
	if err != nil {
		return nil, err
	}
	mt, err := w.MediaType()
	if err != nil {
		return nil, err
	}
	return &v1.Descriptor{MediaType: mt, Size: size, Digest: d, URLs: w.urls}, nil
}
