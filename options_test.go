package imgutil_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/layout"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/remote"
)

// An option of one backend given to another is an error (it was ignored),
// before anything is read or made: the containerd module's options, and
// the fields the core carries for layout and remote.
func TestOptionsOfAnotherBackend(t *testing.T) {
	// As the containerd module's options are made (its own tests give
	// them to every backend).
	namespace := func(o *imgutil.ImageOptions) {
		o.BackendOptions = append(o.BackendOptions, imgutil.BackendOption{Backend: "containerd", Name: `namespace "k8s.io"`, Value: "k8s.io"})
	}
	snapshotter := func(o *imgutil.ImageOptions) {
		o.BackendOptions = append(o.BackendOptions, imgutil.BackendOption{Backend: "containerd", Name: `snapshotter "native"`})
	}
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
			if err := open(op); !errors.Is(err, imgutil.ErrInvalidArgument) || !strings.Contains(err.Error(), "containerd backend") {
				t.Errorf("%s with a containerd option: %v, want ErrInvalidArgument naming it", name, err)
			}
		}
		foreign := map[string]imgutil.ImageOption{
			"WithoutLayersWhenSaved": layout.WithoutLayersWhenSaved(),
			"WithRegistrySetting":    remote.WithRegistrySetting("example.com", true),
			"AddEmptyLayerOnSave":    remote.AddEmptyLayerOnSave(),
		}
		for optName, op := range foreign {
			own := name == "layout" && optName == "WithoutLayersWhenSaved" || name == "remote" && optName != "WithoutLayersWhenSaved"
			err := open(op)
			if own {
				if errors.Is(err, imgutil.ErrInvalidArgument) {
					t.Errorf("%s refused its own option %s: %v", name, optName, err)
				}
				continue
			}
			if !errors.Is(err, imgutil.ErrInvalidArgument) || !strings.Contains(err.Error(), optName) {
				t.Errorf("%s with %s: %v, want ErrInvalidArgument naming it", name, optName, err)
			}
		}
		// PreserveDigest (in LayoutOptions) is every backend's.
		// (With a platform, local asks no daemon: there is none here.)
		preserve := func(o *imgutil.ImageOptions) {
			o.PreserveDigest = true
			o.Platform = imgutil.Platform{OS: "linux", Architecture: "amd64"}
		}
		if err := open(preserve); errors.Is(err, imgutil.ErrInvalidArgument) {
			t.Errorf("%s refused PreserveDigest: %v", name, err)
		}
	}
}
