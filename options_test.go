package imgutil_test

import (
	"errors"
	"testing"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/remote"
)

// An option of the containerd backend given to another backend is an
// error (it was ignored), before anything is read or made.
func TestContainerdOptionsElsewhere(t *testing.T) {
	namespace := func(o *imgutil.ImageOptions) { o.Namespace = "k8s.io" }
	snapshotter := func(o *imgutil.ImageOptions) { o.Snapshotter = "native" }
	dir := t.TempDir()
	for name, open := range map[string]func(imgutil.ImageOption) error{
		"local": func(op imgutil.ImageOption) error {
			_, err := local.NewImage("example.com/app:1", nil, op)
			return err
		},
		"remote": func(op imgutil.ImageOption) error {
			_, err := remote.NewImage("example.com/app:1", nil, op)
			return err
		},
		"layout": func(op imgutil.ImageOption) error {
			_, err := layout.NewImage(dir, op)
			return err
		},
	} {
		for _, op := range []imgutil.ImageOption{namespace, snapshotter} {
			if err := open(op); !errors.Is(err, imgutil.ErrInvalidArgument) {
				t.Errorf("%s with a containerd option: %v, want ErrInvalidArgument", name, err)
			}
		}
	}
}
