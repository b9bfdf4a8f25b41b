package local

import (
	"context"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/built"
)

// SaveFile writes image as a `docker load`-able tar tagged withName in the
// temp directory and returns its path; no partial file is left on failure.
func (s *Store) SaveFile(image *Image, withName string) (string, error) {
	return s.saveFile(context.Background(), image, withName)
}

// saveFile writes the archive of img. An image the daemon holds as it is
// under name (opened unedited, or saved and not edited since) is written
// as the daemon's own archive: loaded back it is the same image, ID
// included, on every store (a containerd store's ID is the digest of its
// manifest, which only its own archive carries). Else the archive is built
// here, with the layers read from the daemon.
func (s *Store) saveFile(ctx context.Context, img *Image, name string) (string, error) {
	tag, err := archive.Tag(name)
	if err != nil {
		return "", err
	}
	if d, ok := img.UnderlyingImage().(*daemonImage); ok && d.taggedAs(name) {
		return s.daemonArchive(ctx, name, d.id, d.cfg.RootFS.DiffIDs)
	}
	if d, ok := img.PreservedBase().(*daemonImage); ok && s.sameDaemon(d.store) {
		// Kept as it is (a copy): the daemon's archive, when name is it.
		if res, err := s.inspect(ctx, name); err == nil && res.ID == d.id {
			return s.daemonArchive(ctx, name, d.id, d.cfg.RootFS.DiffIDs)
		}
	}
	b, err := built.ForSave(img.CNBImageCore)
	if err != nil {
		return "", err
	}
	img.mu.Lock()
	lastID, savedConfig := img.lastID, img.savedConfig
	img.mu.Unlock()
	if lastID != "" && b.ConfigDigest() == savedConfig {
		if res, err := s.inspect(ctx, name); err == nil && res.ID == lastID {
			return s.daemonArchive(ctx, name, lastID, b.Config.RootFS.DiffIDs)
		}
	}
	if err := s.prefetch(ctx, b.Layers); err != nil {
		return "", err
	}
	return archive.WriteImageFile(ctx, b, []string{tag}, "imgutil-local-*.tar", s.reporter("export"))
}

// daemonArchive streams the daemon's archive of the image id (whose layers
// have diffIDs), asked for by name (so that the archive names it), into a
// new file, checked as it streams (see archiveChecker): an archive that is
// not the image leaves no file.
func (s *Store) daemonArchive(ctx context.Context, name, id string, diffIDs []v1.Hash) (string, error) {
	return archive.WriteFileFrom(ctx, "", "imgutil-local-*.tar", func(w io.Writer) error {
		rc, err := s.client.ImageSave(ctx, []string{name}, s.saveOptions(ctx, id)...)
		if err != nil {
			return daemonError("saving image "+name, err)
		}
		defer rc.Close()
		return checkedCopy(w, archive.ReportingReader(rc, name, 0, s.reporter("export")), &archiveChecker{id: id, diffIDs: diffIDs})
	})
}
