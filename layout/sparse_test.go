package layout_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/layout/sparse"
	"github.com/imgbridge/imgutil/testhelpers"
)

func TestSparse(t *testing.T) {
	from := testhelpers.BusyboxImage(t, imgutil.OCITypes)
	dir := filepath.Join(t.TempDir(), "sparse")
	img, err := sparse.NewImage(dir, from)
	must(t, err)
	must(t, img.Save())
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	must(t, err)
	if len(blobs) != 2 {
		t.Fatalf("sparse layout holds %d blobs, want 2 (config and manifest)", len(blobs))
	}
	got := readLayout(t, dir)
	if _, err := got.ConfigFile(); err != nil {
		t.Fatalf("reading sparse image config: %v", err)
	}
	// The digest is preserved: the lifecycle names such layouts by it.
	want, err := from.Digest()
	must(t, err)
	if d, err := got.Digest(); err != nil || d != want {
		t.Fatalf("sparse image digest = %v (%v), want %s", d, err, want)
	}

	// Edited, its created time and history text are kept as they are.
	wantCfg, err := from.ConfigFile()
	must(t, err)
	dir2 := filepath.Join(t.TempDir(), "sparse-edited")
	edited, err := sparse.NewImage(dir2, from)
	must(t, err)
	must(t, edited.SetLabel("extended", "yes"))
	must(t, edited.Save())
	cfg, err := readLayout(t, dir2).ConfigFile()
	must(t, err)
	if !cfg.Created.Equal(wantCfg.Created.Time) || len(cfg.History) != len(wantCfg.History) ||
		cfg.History[0].CreatedBy != wantCfg.History[0].CreatedBy || cfg.Config.Labels["extended"] != "yes" {
		t.Fatalf("edited sparse config: created %v, history %+v; want created %v, history %+v", cfg.Created, cfg.History, wantCfg.Created, wantCfg.History)
	}
}

// noMediaType is an image whose manifest media type is empty, as images
// built in memory (the lifecycle's extender) may be.
type noMediaType struct{ v1.Image }

func (noMediaType) MediaType() (types.MediaType, error) { return "", nil }

func TestBaseWithoutMediaType(t *testing.T) {
	base := noMediaType{testhelpers.BusyboxImage(t, imgutil.OCITypes)}
	dir := filepath.Join(t.TempDir(), "app")
	img, err := layout.NewImage(dir, layout.FromBaseImageInstance(base))
	must(t, err)
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("media type of an image on a base without one = %q, want the OCI manifest type", mt)
	}
	p, _ := testhelpers.LayerFile(t, map[string]string{"f": "f"})
	must(t, img.AddLayer(p))
	must(t, img.Save())
	testhelpers.CheckImage(t, readLayout(t, dir))
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestSparseBaseAndPrevious: a sparse layout (layer blobs absent) works as
// base and previous image; a save writes the blobs it has and leaves the
// absent ones absent; only reading an absent layer's bytes fails.
func TestSparseBaseAndPrevious(t *testing.T) {
	from := testhelpers.BusyboxImage(t, imgutil.OCITypes)
	dir := filepath.Join(t.TempDir(), "run")
	sp, err := sparse.NewImage(dir, from)
	must(t, err)
	must(t, sp.Save())

	app := filepath.Join(t.TempDir(), "app")
	img, err := layout.NewImage(app, layout.FromBaseImagePath(dir), layout.WithPreviousImage(dir))
	must(t, err)
	ids := testhelpers.DiffIDs(t, from)
	must(t, img.ReuseLayer(ids[1]))
	p, appID := testhelpers.LayerFile(t, map[string]string{"app": "app"})
	must(t, img.AddLayer(p))
	must(t, img.Save())
	blobs, err := os.ReadDir(filepath.Join(app, "blobs", "sha256"))
	must(t, err)
	if len(blobs) != 3 {
		t.Fatalf("the app layout holds %d blobs, want 3 (the new layer, config, manifest)", len(blobs))
	}
	// An absent layer opens (as with the existing library) and fails when
	// read, naming its digest.
	rc, err := img.GetLayer(ids[0])
	must(t, err)
	_, readErr := io.ReadAll(rc)
	must(t, rc.Close())
	if !errors.Is(readErr, imgutil.ErrNotFound) {
		t.Fatalf("reading an absent layer = %v, want ErrNotFound", readErr)
	}
	m, err := readLayout(t, app).Manifest()
	must(t, err)
	if !strings.Contains(readErr.Error(), m.Layers[0].Digest.String()) {
		t.Errorf("the error of an absent layer does not name its digest %s", m.Layers[0].Digest)
	}
	// A present one reads.
	rc, err = img.GetLayer(appID)
	must(t, err)
	_, err = io.Copy(io.Discard, rc)
	must(t, err)
	must(t, rc.Close())
}
