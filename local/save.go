package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/built"
	"github.com/imgbridge/imgutil/internal/jsonstream"
)

// Save loads img into the daemon under withName, tags it with each of
// withAdditionalNames, and returns its image ID. Only layers whose chain the
// daemon is not known to hold are sent (on the classic store). Names that
// failed are listed in an imgutil.SaveError; a failed load moves no tag.
func (s *Store) Save(img *Image, withName string, withAdditionalNames ...string) (string, error) {
	id, cfg, err := s.save(context.Background(), img.CNBImageCore, withName, withAdditionalNames...)
	if id != "" {
		img.mu.Lock()
		img.lastID, img.savedConfig = id, cfg
		img.mu.Unlock()
	}
	return id, err
}

// save is Save; it also returns the config digest of the image saved.
func (s *Store) save(ctx context.Context, img *imgutil.CNBImageCore, name string, extras ...string) (string, v1.Hash, error) {
	allFailed := func(err error) imgutil.SaveError {
		var se imgutil.SaveError
		for _, n := range append([]string{name}, extras...) {
			se.Errors = append(se.Errors, imgutil.SaveDiagnostic{ImageName: n, Cause: err})
		}
		return se
	}
	tag, err := archive.Tag(name)
	if err != nil {
		return "", v1.Hash{}, allFailed(err)
	}
	b, err := img.BuildForSave()
	if err != nil {
		return "", v1.Hash{}, allFailed(err)
	}
	// Layers of images read from this daemon may be left out of the load.
	// How depends on the store: only there is it worth asking which.
	var opened []*daemonImage
	for _, l := range b.Layers {
		if dl, ok := l.(*daemonLayer); ok {
			opened = append(opened, dl.image)
		}
	}
	containerd := false
	if len(opened) > 0 {
		if containerd, err = s.containerdStore(ctx, opened); err != nil {
			return "", v1.Hash{}, allFailed(err)
		}
	}
	classic := len(opened) > 0 && !containerd
	// The classic store skips reading a layer whose chain it holds. The
	// containerd store instead turns a missing layer into an empty blob:
	// there the load references the blobs it holds (loadOCI), proven after.
	held := make([]bool, len(b.Layers))
	omitted := 0
	for i, c := range chainIDs(b.Config.RootFS.DiffIDs) {
		if !containerd && len(opened) > 0 && s.hasChain(c) {
			held[i] = true
			omitted++
		}
	}
	omit := func(i int) bool { return held[i] }
	var id string
	switch {
	case len(opened) > 0 && !containerd && s.podmanLike():
		// Podman refuses a docker archive that leaves a layer out, but
		// takes an OCI one whose missing blobs its store holds.
		id, err = s.loadPodman(ctx, b, name)
		if worthSendingAll(ctx, err) {
			id, err = s.load(ctx, b, tag, false, nil)
		}
		omitted = 0
	case containerd && s.supports(ctx, manifestsAPI):
		// Reference the blobs the store holds; fall back to sending every
		// layer when that cannot be proven right.
		id, err = s.loadOCI(ctx, b, name)
		if worthSendingAll(ctx, err) {
			id, err = s.load(ctx, b, tag, false, nil)
		}
	default:
		id, err = s.load(ctx, b, tag, classic, omit)
		if omitted > 0 && podmanRefusal(err) {
			// Podman's answer to a docker archive with a layer left out:
			// it takes an OCI archive instead (remembered for the daemon).
			s.setPodmanLike()
			id, err = s.loadPodman(ctx, b, name)
			if worthSendingAll(ctx, err) {
				id, err = s.load(ctx, b, tag, false, nil)
			}
			omitted = 0
		}
	}
	if omitted > 0 && worthSendingAll(ctx, err) {
		// A daemon that refused the partial archive as partial (it lost a
		// layer since it was inspected) gets one archive with every layer;
		// any other failure is the answer, not a reason to re-send all.
		id, err = s.load(ctx, b, tag, classic, nil)
	}
	if err != nil {
		return "", v1.Hash{}, allFailed(err)
	}
	s.remember(b.Config.RootFS.DiffIDs, b.Layers)

	var se imgutil.SaveError
	for _, n := range extras {
		if err := s.tag(ctx, id, n); err != nil {
			se.Errors = append(se.Errors, imgutil.SaveDiagnostic{ImageName: n, Cause: err})
		}
	}
	if len(se.Errors) > 0 {
		return id, b.ConfigDigest(), se
	}
	return id, b.ConfigDigest(), nil
}

// retryable reports whether a failed load may succeed sent another way:
// not when the input is bad (a wrong diffID, a vanished layer file) or the
// caller gave up.
func retryable(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil &&
		!errors.Is(err, imgutil.ErrInvalidArgument) && !errors.Is(err, fs.ErrNotExist)
}

func (s *Store) tag(ctx context.Context, id, name string) error {
	t, err := archive.Tag(name)
	if err != nil {
		return err
	}
	if _, err := s.client.ImageTag(ctx, client.ImageTagOptions{Source: id, Target: t}); err != nil {
		return daemonError("tagging "+name, err)
	}
	return nil
}

// load streams an archive of b tagged tag into the daemon and returns the
// ID the daemon gives the image.
// classic says the daemon is known to use the classic store.
func (s *Store) load(ctx context.Context, b *built.Built, tag string, classic bool, omit func(int) bool) (string, error) {
	var send []v1.Layer
	for i, l := range b.Layers {
		if omit == nil || !omit(i) {
			send = append(send, l)
		}
	}
	if err := s.prefetch(ctx, send); err != nil {
		return "", err
	}
	entries, err := archive.Docker(b.RawConfig, b.ConfigDigest(), b.Layers, []string{tag}, omit)
	if err != nil {
		return "", err
	}
	// A classic store's image ID is the config digest (a containerd store's
	// is the digest of a manifest the daemon wrote for the archive).
	return s.loadAndCheck(ctx, entries, b, tag, classic)
}

// loadAndCheck streams entries into the daemon and proves tag then names
// the image b (see checkLoaded). Cancelled late, the load may have landed
// all the same: then it says so.
func (s *Store) loadAndCheck(ctx context.Context, entries []archive.Entry, b *built.Built, tag string, byConfig bool) (string, error) {
	if err := s.stream(ctx, archive.Reporting(entries, s.reporter("save"))); err != nil {
		if ctx.Err() != nil {
			if id, ok := s.landed(b, tag); ok {
				return id, nil
			}
		}
		return "", err
	}
	return s.checkLoaded(ctx, b, tag, byConfig)
}

// checkLoaded proves tag names the image b after a load: the same layers
// and, when byConfig (classic stores, Podman: the image ID is the config
// digest), the same config. It returns the image ID.
func (s *Store) checkLoaded(ctx context.Context, b *built.Built, tag string, byConfig bool) (string, error) {
	res, err := s.inspect(ctx, tag)
	if err != nil {
		return "", fmt.Errorf("finding the loaded image: %w", err)
	}
	if want := diffIDStrings(b); !slices.Equal(res.RootFS.Layers, want) {
		return "", fmt.Errorf("after the load %s has layers %v, not %v", tag, res.RootFS.Layers, want)
	}
	if want := b.ConfigDigest().String(); byConfig && res.ID != want {
		return "", fmt.Errorf("after the load %s is image %s, not %s", tag, res.ID, want)
	}
	return res.ID, nil
}

func diffIDStrings(b *built.Built) []string {
	out := make([]string, len(b.Config.RootFS.DiffIDs))
	for i, d := range b.Config.RootFS.DiffIDs {
		out[i] = d.String()
	}
	return out
}

// landed reports whether tag names the image b, by its config digest (the
// image ID on classic stores and Podman), asking with a fresh short context:
// the caller's was cancelled after the archive may have been taken.
func (s *Store) landed(b *built.Built, tag string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := s.checkLoaded(ctx, b, tag, true)
	return id, err == nil
}

// errLoadEnded closes the archive pipe once the daemon has answered.
var errLoadEnded = errors.New("image load ended")

// stream writes entries as a tar straight into ImageLoad and reads the
// daemon's answer. The writer never outlives this call: when the daemon
// answers early, or the request fails, the pipe is closed under it.
func (s *Store) stream(ctx context.Context, entries []archive.Entry) error {
	pr, pw := io.Pipe()
	written := make(chan error, 1)
	go func() {
		err := archive.Write(pw, entries)
		pw.CloseWithError(err)
		written <- err
	}()
	res, err := s.client.ImageLoad(ctx, pr, client.ImageLoadWithQuiet(true))
	if err != nil {
		pr.CloseWithError(errLoadEnded)
		if werr := <-written; ours(werr) {
			return fmt.Errorf("writing the image archive: %w", werr)
		}
		return daemonError("loading the image", err)
	}
	_, rerr := jsonstream.Read(res)
	res.Close()
	pr.CloseWithError(errLoadEnded)
	werr := <-written
	switch {
	case ours(werr):
		return fmt.Errorf("writing the image archive: %w", werr)
	case rerr != nil:
		return fmt.Errorf("loading the image: %w", rerr)
	case werr != nil:
		// The daemon stopped reading yet reported nothing.
		return fmt.Errorf("loading the image: the daemon stopped reading the archive: %w", werr)
	}
	return nil
}

// ours reports whether a failure to write the archive is the writer's own
// (a layer that could not be read) rather than the reader going away, in
// which case the daemon's answer or the context says what happened.
func ours(werr error) bool {
	return werr != nil && !errors.Is(werr, errLoadEnded) && !errors.Is(werr, io.ErrClosedPipe)
}

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
		return s.daemonArchive(ctx, name, d.id)
	}
	b, err := img.BuildForSave()
	if err != nil {
		return "", err
	}
	img.mu.Lock()
	lastID, savedConfig := img.lastID, img.savedConfig
	img.mu.Unlock()
	if lastID != "" && b.ConfigDigest() == savedConfig {
		if res, err := s.inspect(ctx, name); err == nil && res.ID == lastID {
			return s.daemonArchive(ctx, name, lastID)
		}
	}
	if err := s.prefetch(ctx, b.Layers); err != nil {
		return "", err
	}
	return archive.WriteImageFile(b, []string{tag}, "imgutil-local-*.tar", s.reporter("export"))
}

// daemonArchive streams the daemon's archive of the image id, asked for by
// name (so that the archive names it), into a new file.
func (s *Store) daemonArchive(ctx context.Context, name, id string) (string, error) {
	return archive.WriteFileFrom("", "imgutil-local-*.tar", func(w io.Writer) error {
		rc, err := s.client.ImageSave(ctx, []string{name}, s.saveOptions(ctx, id)...)
		if err != nil {
			return daemonError("saving image "+name, err)
		}
		defer rc.Close()
		_, err = io.Copy(w, archive.ReportingReader(rc, name, 0, s.reporter("export")))
		return err
	})
}
