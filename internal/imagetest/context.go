package imagetest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/testhelpers"
)

// contextMethods: the image is an imgutil.ContextImage; with a context
// already done, every call that reaches the store fails with its error,
// saves nothing and leaves no file; with a live one, they work.
func (s suite) contextMethods(t *testing.T) {
	baseName, _ := s.base(t)
	name := s.h.FreshName(t)
	plain := s.h.NewImage(t, name, imgutil.FromBaseImage(baseName))
	img, ok := plain.(imgutil.ContextImage)
	if !ok {
		t.Fatalf("%T is not an imgutil.ContextImage", plain)
	}
	p, id := testhelpers.LayerFile(t, map[string]string{"ctx/file": "c"})
	must(t, img.AddLayerWithDiffID(p, id))
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := img.SaveAsContext(done, name); !errors.Is(err, context.Canceled) {
		t.Errorf("SaveAsContext with a cancelled context: %v, want context.Canceled", err)
	}
	if found, err := img.FoundE(context.Background()); err != nil || found {
		t.Errorf("after a cancelled save FoundE = %v, %v; want false, nil", found, err)
	}
	if out, err := img.SaveFileContext(done); !errors.Is(err, context.Canceled) {
		t.Errorf("SaveFileContext with a cancelled context: %q, %v; want context.Canceled", out, err)
	}
	if _, err := img.FoundE(done); !errors.Is(err, context.Canceled) {
		t.Errorf("FoundE with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := img.ValidE(done); !errors.Is(err, context.Canceled) {
		t.Errorf("ValidE with a cancelled context: %v, want context.Canceled", err)
	}
	if rc, err := img.GetLayerContext(done, id); !errors.Is(err, context.Canceled) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("GetLayerContext with a cancelled context: %v, want context.Canceled", err)
	}
	left, err := os.ReadDir(tmp)
	must(t, err)
	for _, e := range left {
		if strings.HasSuffix(e.Name(), ".tar") || strings.HasPrefix(e.Name(), ".imgutil-partial-") {
			t.Errorf("a cancelled call left %s", e.Name())
		}
	}

	live := context.Background()
	must(t, img.SaveAsContext(live, name))
	for what, check := range map[string]func(context.Context) (bool, error){"FoundE": img.FoundE, "ValidE": img.ValidE} {
		if ok, err := check(live); err != nil || !ok {
			t.Errorf("after a save %s = %v, %v; want true, nil", what, ok, err)
		}
	}
	rc, err := img.GetLayerContext(live, id)
	must(t, err)
	must(t, rc.Close())
	out, err := img.SaveFileContext(live)
	must(t, err)
	must(t, os.Remove(out))
}
