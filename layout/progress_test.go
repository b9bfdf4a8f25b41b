package layout_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/testhelpers"
)

func TestSaveFileProgress(t *testing.T) {
	var mu sync.Mutex
	last := map[string]imgutil.Progress{}
	img, err := layout.NewImage(filepath.Join(t.TempDir(), "p"), imgutil.WithProgress(func(p imgutil.Progress) {
		mu.Lock()
		defer mu.Unlock()
		last[p.Item] = p
	}))
	must(t, err)
	l, diffID := testhelpers.RandomLayerFile(t, 3<<20)
	must(t, img.AddLayer(l))
	out, err := img.SaveFile()
	must(t, err)
	t.Cleanup(func() { os.Remove(out) })
	p, ok := last[diffID]
	if !ok || p.Phase != "export" || p.Complete != p.Total || p.Total == 0 {
		t.Fatalf("last progress of the layer = %+v (all: %v), want a complete export update", p, last)
	}
}
