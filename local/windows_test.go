package local

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layer"
)

// windowsBase puts into f (a Windows daemon) a base image as one pulled
// from Microsoft's registry: two foreign layers (their bytes held by the
// daemon, their source elsewhere) and one of its own.
func windowsBase(t *testing.T, f *fakeDaemon) (name string, foreign []string) {
	t.Helper()
	f.os, f.osVersion = "windows", "10.0.20348.2340"
	servercore := fakeLayer("Files/Windows/System32/kernel32.dll", "the OS")
	update := fakeLayer("Files/Windows/System32/ntdll.dll", "its update")
	own := fakeLayer("Files/app/run.cmd", "the base's own")
	for i, l := range [][]byte{servercore, update} {
		d := fakeDigest(l)
		h, _ := v1.NewHash(fakeDigest([]byte{byte(i)}))
		f.foreign[d] = v1.Descriptor{MediaType: types.DockerForeignLayer, Size: int64(1000 + i), Digest: h,
			URLs: []string{"https://mcr.microsoft.com/v2/windows/servercore/blobs/" + h.String()}}
		foreign = append(foreign, d)
	}
	name = "mcr.microsoft.com/windows/servercore:ltsc2022"
	f.add(name, servercore, update, own)
	return name, foreign
}

// A Windows image on a base with foreign layers, through a daemon that
// answers as a Windows daemon does: the save sends the new layer only (no
// foreign layer is read from the daemon or sent to it), keeps the OS and
// its version, and the archive SaveFile writes keeps the foreign layers
// foreign (LayerSources), whether the image is the daemon's as saved or
// edited since.
func TestWindowsImageWithForeignLayers(t *testing.T) {
	f, s := fakeStore(t, "classic")
	base, foreign := windowsBase(t, f)
	ctx := context.Background()
	img, err := NewImageInStore(ctx, s, "example.com/app:1", imgutil.FromBaseImage(base))
	noErr(t, err)
	if got, _ := img.OS(); got != "windows" {
		t.Errorf("OS = %q", got)
	}
	if got, _ := img.OSVersion(); got != f.osVersion {
		t.Errorf("OSVersion = %q", got)
	}
	p := filepath.Join(t.TempDir(), "layer.tar")
	noErr(t, os.WriteFile(p, fakeLayer("Files/app/app.exe", "new"), 0o644))
	noErr(t, img.AddLayer(p))
	noErr(t, img.Save())

	f.mu.Lock()
	saves, sent := f.saves, f.sent
	f.mu.Unlock()
	if saves != 0 {
		t.Errorf("the daemon was asked for %d archives: base layers were read", saves)
	}
	for _, d := range foreign {
		if sent[d] != 0 {
			t.Errorf("foreign layer %s was sent to the daemon", d)
		}
	}
	if len(sent) != 1 {
		t.Errorf("loads carried layers %v, want the new one only", sent)
	}
	saved, ok := f.lookup("example.com/app:1")
	if !ok {
		t.Fatal("the image is not in the daemon")
	}
	var cfg v1.ConfigFile
	noErr(t, json.Unmarshal(saved.rawConfig, &cfg))
	if cfg.OS != "windows" || cfg.OSVersion != f.osVersion {
		t.Errorf("saved config: os %q, os.version %q", cfg.OS, cfg.OSVersion)
	}

	// As saved: the daemon's own archive.
	path, err := s.SaveFile(img, "example.com/app:1")
	noErr(t, err)
	defer os.Remove(path)
	wantForeign(t, path, f.foreign)

	// Edited since: an archive built here, from the daemon's layers.
	noErr(t, img.SetLabel("edited", "yes"))
	path2, err := s.SaveFile(img, "example.com/app:2")
	noErr(t, err)
	defer os.Remove(path2)
	wantForeign(t, path2, f.foreign)
}

// wantForeign checks the docker archive at path lists exactly the layers
// of foreign as foreign, with their descriptors.
func wantForeign(t *testing.T, path string, foreign map[string]v1.Descriptor) {
	t.Helper()
	file, err := os.Open(path)
	noErr(t, err)
	defer file.Close()
	tr := tar.NewReader(file)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatal("no manifest.json")
		}
		noErr(t, err)
		if hdr.Name != "manifest.json" {
			continue
		}
		var ms []struct {
			LayerSources map[string]v1.Descriptor
		}
		noErr(t, json.NewDecoder(tr).Decode(&ms))
		if len(ms) != 1 || len(ms[0].LayerSources) != len(foreign) {
			t.Fatalf("%s: LayerSources %+v, want %d", filepath.Base(path), ms, len(foreign))
		}
		for d, want := range foreign {
			got := ms[0].LayerSources[d]
			if got.MediaType != want.MediaType || got.Digest != want.Digest || got.Size != want.Size || len(got.URLs) != 1 || got.URLs[0] != want.URLs[0] {
				t.Errorf("%s: layer %s: source %+v, want %+v", filepath.Base(path), d, got, want)
			}
		}
		return
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// From scratch on a Windows daemon: the image is a Windows image (the
// daemon's platform) on the minimal Windows base layer, as the existing
// library makes it, and the daemon takes it.
func TestWindowsImageFromScratch(t *testing.T) {
	f, s := fakeStore(t, "classic")
	f.os, f.osVersion = "windows", "10.0.20348.2340"
	err := saveOn(t, s, "example.com/scratch:1", "")
	if err != nil {
		t.Fatal(err)
	}
	saved, ok := f.lookup("example.com/scratch:1")
	if !ok {
		t.Fatal("not saved")
	}
	var cfg v1.ConfigFile
	noErr(t, json.Unmarshal(saved.rawConfig, &cfg))
	r, err := layer.WindowsBaseLayer()
	noErr(t, err)
	h := sha256.New()
	_, err = io.Copy(h, r)
	noErr(t, err)
	if cfg.OS != "windows" || len(cfg.RootFS.DiffIDs) != 2 || cfg.RootFS.DiffIDs[0].Hex != hex.EncodeToString(h.Sum(nil)) {
		t.Errorf("saved: os %q, layers %v: want windows, the Windows base layer and the new one", cfg.OS, cfg.RootFS.DiffIDs)
	}
}
