package imgutil_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/built"
)

func TestBuildIsMemoizedUntilTheNextEdit(t *testing.T) {
	img, err := imgutil.NewCNBImage(imgutil.ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b1, err := built.Of(img)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := built.Of(img)
	if b1 != b2 {
		t.Fatal("Build without an edit in between built again")
	}
	if err := img.SetLabel("k", "v"); err != nil {
		t.Fatal(err)
	}
	b3, _ := built.Of(img)
	if b3 == b1 || b3.Config.Config.Labels["k"] != "v" {
		t.Fatal("Build after an edit did not show it")
	}
	if b1.Config.Config.Labels["k"] != "" {
		t.Fatal("an edit changed an image already built")
	}
}

func TestMediaTypeConversion(t *testing.T) {
	base, err := random.Image(256, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range []imgutil.MediaTypes{imgutil.OCITypes, imgutil.DockerTypes} {
		img, err := imgutil.NewCNBImage(imgutil.ImageOptions{BaseImage: base, MediaTypes: mt})
		if err != nil {
			t.Fatal(err)
		}
		b, err := built.Of(img)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(b.Image()); err != nil {
			t.Fatalf("%v: validate.Image: %v", mt, err)
		}
		m, err := b.Image().Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.MediaType != mt.ManifestType() || m.Config.MediaType != mt.ConfigType() {
			t.Errorf("%v: manifest %s, config %s", mt, m.MediaType, m.Config.MediaType)
		}
		for _, l := range m.Layers {
			if l.MediaType != mt.LayerType() {
				t.Errorf("%v: layer type %s", mt, l.MediaType)
			}
		}
	}
}

func TestScratchDefaults(t *testing.T) {
	img, err := imgutil.NewCNBImage(imgutil.ImageOptions{Platform: imgutil.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := built.Of(img)
	if err != nil {
		t.Fatal(err)
	}
	if b.Config.Architecture != "arm" || b.Config.Variant != "v7" || b.Config.OS != "linux" {
		t.Errorf("platform = %s/%s/%s", b.Config.OS, b.Config.Architecture, b.Config.Variant)
	}
	if b.ManifestType() != types.OCIManifestSchema1 {
		t.Errorf("manifest type of an image from scratch = %s, want OCI", b.ManifestType())
	}
	// Created is normalized by a save, not before.
	saved, err := built.ForSave(img)
	if err != nil {
		t.Fatal(err)
	}
	if !saved.Config.Created.Equal(imgutil.NormalizedDateTime) {
		t.Errorf("saved Created = %v, want NormalizedDateTime", saved.Config.Created)
	}
	if err := img.SetEnv("A=B", "x"); !errors.Is(err, imgutil.ErrInvalidArgument) {
		t.Errorf("SetEnv(A=B) = %v, want ErrInvalidArgument", err)
	}
}

func TestConcurrentEdits(t *testing.T) {
	img, err := imgutil.NewCNBImage(imgutil.ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				_ = img.SetLabel(string(rune('a'+i)), string(rune('0'+j%10)))
				if _, err := built.Of(img); err != nil {
					t.Error(err)
				}
				_, _ = img.Labels()
			}
		}()
	}
	wg.Wait()
	if l, _ := img.Labels(); len(l) != 8 {
		t.Fatalf("labels = %v, want 8", l)
	}
}

// TestCoreIsALiveV1Image: the embedded v1.Image answers for the edits made
// so far, and an image not edited is its base itself.
func TestCoreIsALiveV1Image(t *testing.T) {
	base, err := random.Image(128, 2)
	if err != nil {
		t.Fatal(err)
	}
	img, err := imgutil.NewCNBImage(imgutil.ImageOptions{BaseImage: base})
	if err != nil {
		t.Fatal(err)
	}
	var v v1.Image = img
	want, _ := base.Digest()
	if d, err := v.Digest(); err != nil || d != want {
		t.Fatalf("unedited Digest = %v (%v), want the base's %s", d, err, want)
	}
	if err := img.SetLabel("k", "v"); err != nil {
		t.Fatal(err)
	}
	cfg, err := img.Image.ConfigFile()
	if err != nil || cfg.Config.Labels["k"] != "v" {
		t.Fatalf("the embedded image's config = %+v (%v), want the label", cfg, err)
	}
	if d, _ := v.Digest(); d == want {
		t.Fatal("the edited image has the base's digest")
	}
	layers, err := img.Image.Layers() //nolint:staticcheck // the embedded field is what callers read
	if err != nil || len(layers) != 2 {
		t.Fatalf("Layers = %d (%v), want 2", len(layers), err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("the core is not a valid image: %v", err)
	}
}

// TestBadInputIsRefusedEarly: values that would make a wrong platform, a
// broken config or a hung read are refused at once with ErrInvalidArgument.
func TestBadInputIsRefusedEarly(t *testing.T) {
	if _, err := imgutil.NewCNBImage(imgutil.ImageOptions{Platform: imgutil.Platform{OS: "linux/amd64"}}); !errors.Is(err, imgutil.ErrInvalidArgument) {
		t.Errorf("a platform OS with a slash = %v, want ErrInvalidArgument", err)
	}
	img, err := imgutil.NewCNBImage(imgutil.ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"SetOS(..)":                  img.SetOS(".."),
		"SetArchitecture(a b)":       img.SetArchitecture("a b"),
		"SetVariant(v\\n)":           img.SetVariant("v\n"),
		"SetOSVersion(1/2)":          img.SetOSVersion("1/2"),
		"SetLabel(empty)":            img.SetLabel("", "v"),
		"SetEnv(A B)":                img.SetEnv("A B", "x"),
		"SetEnv(A\\nB)":              img.SetEnv("A\nB", "x"),
		"AddLayerWithDiffID(sha512)": img.AddLayerWithDiffID("/dev/null", "sha512:"+strings.Repeat("a", 128)),
		"AddLayer(device)":           img.AddLayer("/dev/zero"),
	} {
		if !errors.Is(err, imgutil.ErrInvalidArgument) {
			t.Errorf("%s = %v, want ErrInvalidArgument", name, err)
		}
	}
}
