package layout

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/built"
	"github.com/imgbridge/imgutil/internal/verified"
)

// SaveIndex makes the layout at dir hold idx, a multi-platform image (an
// index of images), as an image save makes it hold one image: every
// image's layers, config and manifest, then the index, each blob through
// a temp file and checked against its digest; index.json, replaced last
// and atomically, names the index alone (annotated with refName, when
// given, as org.opencontainers.image.ref.name). On failure, a cancelled
// ctx included, nothing written stays and index.json is as it was. It
// returns the index's digest. As the other backends' SaveIndex, it takes an
// index of images: a nested index, or a child that is not an image, is
// refused (imgutil.ErrInvalidArgument).
func SaveIndex(ctx context.Context, dir string, idx v1.ImageIndex, refName string) (v1.Hash, error) {
	children, err := built.Children(idx)
	if err != nil {
		return v1.Hash{}, err
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading the index: %w", err)
	}
	want, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading the index: %w", err)
	}
	if got := sha256Of(raw); got != want {
		return v1.Hash{}, fmt.Errorf("the index's bytes have digest %s, not its digest %s: %w", got, want, imgutil.ErrInvalidArgument)
	}
	mt, err := idx.MediaType()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading the index: %w", err)
	}
	if !mt.IsIndex() {
		mt = types.OCIImageIndex
	}
	var d v1.Hash
	err = writeInto(ctx, dir, verified.FromEnv(), func(w *writer) error {
		for _, c := range children {
			if err := w.writeLayers(c.Layers); err != nil {
				return fmt.Errorf("manifest %s: %w", c.Descriptor.Digest, err)
			}
			if err := w.writeChecked(c.RawConfig, c.Manifest.Config.Digest, "config"); err != nil {
				return err
			}
			if err := w.writeChecked(c.RawManifest, c.Descriptor.Digest, "manifest"); err != nil {
				return err
			}
		}
		if d, err = w.writeBytes(raw); err != nil {
			return fmt.Errorf("writing the index: %w", err)
		}
		return w.finish(v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: d, Annotations: ImageRefAnnotation(refName)})
	})
	if err != nil {
		return v1.Hash{}, err
	}
	return d, nil
}

// writeChecked writes b, the blob want (a config or manifest an index
// names), refusing bytes of another digest.
func (w *writer) writeChecked(b []byte, want v1.Hash, what string) error {
	if got := sha256Of(b); got != want {
		return fmt.Errorf("%s %s: its bytes have digest %s: %w", what, want, got, imgutil.ErrInvalidArgument)
	}
	if _, err := w.writeBytes(b); err != nil {
		return fmt.Errorf("writing %s %s: %w", what, want, err)
	}
	return nil
}
