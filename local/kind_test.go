package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/layer"
	"github.com/imgbridge/imgutil/internal/verified"
)

// The choice of a daemon's kind and its fallbacks, against fakeDaemon:
// the real daemons prove the same saves end to end (local_test.go); here
// each refusal and each partial load is made to happen.

func fakeStore(t *testing.T, kind string) (*fakeDaemon, *Store) {
	t.Helper()
	t.Setenv(ManifestCacheEnv, "off")
	t.Setenv(layer.GzipCacheEnv, "off")
	t.Setenv(verified.CacheEnv, "off")
	f := newFakeDaemon(kind)
	s := NewStore(f)
	t.Cleanup(func() { _ = s.Close() })
	return f, s
}

// saveOn saves name, made of base (none when empty) and one new layer.
func saveOn(t *testing.T, s *Store, name, base string) error {
	t.Helper()
	var opts []imgutil.ImageOption
	if base != "" {
		opts = append(opts, imgutil.FromBaseImage(base))
	}
	img, err := NewImageInStore(context.Background(), s, name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(p, fakeLayer("app/"+name, name), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := img.AddLayer(p); err != nil {
		t.Fatal(err)
	}
	return img.Save()
}

func wantLoads(t *testing.T, f *fakeDaemon, want ...fakeLoad) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.loads) != len(want) {
		t.Fatalf("loads %+v, want %d: %+v", f.loads, len(want), want)
	}
	for i, w := range want {
		got := f.loads[i]
		if got.oci != w.oci || got.layers != w.layers || (w.err == "") != (got.err == "") || !strings.Contains(got.err, w.err) {
			t.Errorf("load %d: %+v, want %+v", i, got, w)
		}
	}
}

func wantKind(t *testing.T, s *Store, want daemonKind) {
	t.Helper()
	if got := s.knownKind(); !reflect.DeepEqual(got, want) {
		t.Errorf("the Store's kind is %v, want %v", got, want)
	}
}

// wantOnly checks the daemon's names are exactly names (no staging or
// probe name left), each on an image whose content is all there.
func wantOnly(t *testing.T, f *fakeDaemon, names ...string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.names) != len(names) {
		t.Errorf("the daemon has names %v, want %v", f.names, names)
	}
	for _, n := range names {
		img, ok := f.lookup(n)
		if !ok {
			t.Errorf("%s was not saved", n)
			continue
		}
		if !img.available {
			t.Errorf("%s names an image whose content is not all there", n)
		}
	}
}

func TestKindClassicSendsOnlyNewLayers(t *testing.T) {
	f, s := fakeStore(t, "classic")
	f.add("base:1", fakeLayer("a", "a"), fakeLayer("b", "b"))
	if err := saveOn(t, s, "app:1", "base:1"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s, classicStore{})
	// Known classic, a save from scratch is not staged either.
	if err := saveOn(t, s, "scratch:1", ""); err != nil {
		t.Fatal(err)
	}
	wantLoads(t, f, fakeLoad{layers: 1}, fakeLoad{layers: 1})
	if f.tags != 0 {
		t.Errorf("%d tag calls on a classic store, want none (the load names the image)", f.tags)
	}
	wantOnly(t, f, "base:1", "app:1", "scratch:1")
}

func TestKindUnknownStoreStages(t *testing.T) {
	f, s := fakeStore(t, "classic")
	if err := saveOn(t, s, "scratch:1", ""); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s, nil)
	wantLoads(t, f, fakeLoad{layers: 1})
	if f.tags != 1 {
		t.Errorf("%d tag calls, want 1 (the staged image given its name)", f.tags)
	}
	wantOnly(t, f, "scratch:1")
}

func TestKindPodmanLearntFromItsRefusal(t *testing.T) {
	f, s := fakeStore(t, "podman")
	f.recognisable = false
	f.add("base:1", fakeLayer("a", "a"), fakeLayer("b", "b"))
	if err := saveOn(t, s, "app:1", "base:1"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s, podmanService{})
	if err := saveOn(t, s, "app:2", "base:1"); err != nil {
		t.Fatal(err)
	}
	// The refused docker archive, then OCI archives only.
	wantLoads(t, f, fakeLoad{layers: 1, err: "layer tarfiles are missing"}, fakeLoad{oci: true, layers: 1}, fakeLoad{oci: true, layers: 1})
	wantOnly(t, f, "base:1", "app:1", "app:2")
}

func TestKindPodmanRecognisedFromItsImages(t *testing.T) {
	f, s := fakeStore(t, "podman")
	f.add("base:1", fakeLayer("a", "a"), fakeLayer("b", "b"))
	if err := saveOn(t, s, "app:1", "base:1"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s, podmanService{})
	wantLoads(t, f, fakeLoad{oci: true, layers: 1})
	wantOnly(t, f, "base:1", "app:1")
}

func TestKindContainerdReferencesStoredBlobs(t *testing.T) {
	f, s := fakeStore(t, "containerd")
	f.add("base:1", fakeLayer("a", "a"), fakeLayer("b", "b"))
	if err := saveOn(t, s, "app:1", "base:1"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s, containerdStore{})
	wantLoads(t, f, fakeLoad{oci: true, layers: 1})
	if f.tags != 1 {
		t.Errorf("%d tag calls, want 1 (the staged image given its name)", f.tags)
	}
	wantOnly(t, f, "base:1", "app:1")
}

// saveLosing saves app:1, base:1 (layers a, b) and a new layer, after the
// daemon lost the base layer lost since the base was opened.
func saveLosing(t *testing.T, kind, lost string) *fakeDaemon {
	t.Helper()
	f, s := fakeStore(t, kind)
	f.add("base:1", fakeLayer("a", "a"), fakeLayer("b", "b"))
	img, err := NewImageInStore(context.Background(), s, "app:1", imgutil.FromBaseImage("base:1"))
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.lost[fakeDigest(fakeLayer(lost, lost))] = true
	f.mu.Unlock()
	p := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(p, fakeLayer("app", "new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := img.AddLayer(p); err != nil {
		t.Fatal(err)
	}
	if err := img.Save(); err != nil {
		t.Fatal(err)
	}
	return f
}

// The store took the partial load but lacks content it references (lost
// since the base was inspected): every layer is sent, and only that image
// gets the name.
func TestKindContainerdResendsWhatTheStoreLost(t *testing.T) {
	f := saveLosing(t, "containerd", "a")
	wantLoads(t, f, fakeLoad{oci: true, layers: 1}, fakeLoad{layers: 3})
	wantOnly(t, f, "base:1", "app:1")
}

// The classic store refuses a load that leaves out a layer it lost: every
// layer is sent.
func TestKindClassicResendsALostLayer(t *testing.T) {
	f := saveLosing(t, "classic", "b")
	wantLoads(t, f, fakeLoad{layers: 1, err: "docker-import-"}, fakeLoad{layers: 3})
	wantOnly(t, f, "base:1", "app:1")
}

// A refusal of another kind is the answer: nothing is sent again.
func TestKindOtherRefusalIsTheAnswer(t *testing.T) {
	f, s := fakeStore(t, "classic")
	f.add("base:1", fakeLayer("a", "a"))
	f.refuse = "write /var/lib/docker/tmp/x: no space left on device"
	err := saveOn(t, s, "app:1", "base:1")
	var se imgutil.SaveError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("save on a full daemon: %v, want a SaveError saying so", err)
	}
	wantLoads(t, f, fakeLoad{layers: 1, err: "no space left"})
	wantOnly(t, f, "base:1")
}

// quickDrops makes the waits between dropped loads a millisecond for the
// test.
func quickDrops(t *testing.T) {
	unit := dropUnit
	dropUnit = time.Millisecond
	t.Cleanup(func() { dropUnit = unit })
}

// A load that the containerd store names without its content (a prune
// collected it under the load: inspect lists no layers, the manifest is
// not available) is sent again whole; and when that one is named without
// its content too (the check by layers: a docker archive), it is dropped,
// and sent whole once more.
func TestHollowLoadIsSentAgainWhole(t *testing.T) {
	quickDrops(t)
	f, s := fakeStore(t, "containerd")
	f.add("base:1", fakeLayer("a", "a"))
	f.hollow = 2
	if err := saveOn(t, s, "app:1", "base:1"); err != nil {
		t.Fatalf("a save whose first loads were named without their content: %v", err)
	}
	wantLoads(t, f, fakeLoad{oci: true, layers: 1}, fakeLoad{layers: 2}, fakeLoad{layers: 2})
	wantOnly(t, f, "base:1", "app:1")
}

// A load the daemon dropped (its lease removed by a prune meanwhile) is
// sent again, a few times at most; when it is dropped every time, the
// error says so and nothing is named.
func TestDroppedLoadIsSentAgain(t *testing.T) {
	quickDrops(t)
	f, s := fakeStore(t, "containerd")
	f.add("base:1", fakeLayer("a", "a"))
	f.drop = maxDropped - 1
	if err := saveOn(t, s, "app:1", "base:1"); err != nil {
		t.Fatalf("a save whose first %d loads were dropped: %v", maxDropped-1, err)
	}
	if len(f.loads) != maxDropped {
		t.Errorf("%d loads, want %d", len(f.loads), maxDropped)
	}
	wantOnly(t, f, "base:1", "app:1")

	f, s = fakeStore(t, "containerd")
	f.add("base:1", fakeLayer("a", "a"))
	f.drop = 100
	err := saveOn(t, s, "app:1", "base:1")
	if !errors.Is(err, ErrLoadDropped) || !strings.Contains(err.Error(), "lease does not exist") {
		t.Fatalf("every load dropped: %v, want ErrLoadDropped naming the daemon's words", err)
	}
	if len(f.loads) != maxDropped {
		t.Errorf("%d loads, want %d", len(f.loads), maxDropped)
	}
	wantOnly(t, f, "base:1")
}
