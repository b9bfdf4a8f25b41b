package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
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
	if _, err := archive.Tag(name); err != nil {
		return "", v1.Hash{}, allFailed(err)
	}
	if d, ok := img.PreservedBase().(*daemonImage); ok && s.sameDaemon(d.store) {
		// Kept as it is, in the daemon that holds it: a new name for the
		// very image (its ID kept on every store), nothing loaded.
		return s.nameAsIs(ctx, d, name, extras)
	}
	b, err := built.ForSave(img)
	if err != nil {
		return "", v1.Hash{}, allFailed(err)
	}
	// Layers of images read from this daemon may be left out of the load;
	// how depends on the kind of its store.
	var opened []*daemonImage
	for _, l := range b.Layers {
		if dl, ok := l.(*daemonLayer); ok {
			opened = append(opened, dl.image)
			if dl.image.store != s && s.sameDaemon(dl.image.store) {
				// Opened by another Store of this daemon (a new base
				// opened on its own, as a rebase does): the daemon holds
				// its chains, which need not be read nor sent.
				s.remember(dl.image.cfg.RootFS.DiffIDs, dl.image.layersAsV1())
			}
		}
	}
	k, err := s.kindFor(ctx, opened)
	if err != nil {
		return "", v1.Hash{}, allFailed(err)
	}
	id, err := s.load(ctx, k, b, name)
	if err != nil {
		return "", v1.Hash{}, allFailed(err)
	}
	s.remember(b.Config.RootFS.DiffIDs, b.Layers)
	s.sweepTags(ctx)

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

// load loads b under name as the daemon's kind k wants: leaving out what
// the daemon holds, then, if the daemon refused that as partial or lacks
// some of its content, with every layer (sent as its kind, learnt
// meanwhile maybe, wants); any other failure is the answer. A load the
// daemon dropped (see ErrLoadDropped) is sent again, up to maxDropped
// loads in all; with every layer once content it referenced was gone.
func (s *Store) load(ctx context.Context, k daemonKind, b *built.Built, name string) (string, error) {
	all := false
	odd := 0
	for attempt := 1; ; attempt++ {
		var id string
		var err error
		if !all {
			id, err = k.loadPartial(ctx, s, b, name)
			// Refused as partial: every load after it is whole.
			all = worthSendingAll(ctx, err)
		}
		if all {
			id, err = s.kindOr(k).loadAll(ctx, s, b, name)
		}
		if !errors.Is(err, ErrLoadDropped) || ctx.Err() != nil {
			return id, err
		}
		// Content the load was to reference is gone (collected): what it
		// left out goes with the next one.
		all = all || strings.Contains(err.Error(), "content digest") || errors.Is(err, errContentGone)
		if tooManyOdd(err, &odd) {
			return "", fmt.Errorf("stopped after %d dropped loads, %d of them cut or named without their content: %w", attempt, odd, err)
		}
		if attempt == maxDropped {
			return "", fmt.Errorf("the daemon dropped the image %d times: %w", attempt, err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(dropWait(attempt)):
		}
	}
}

// maxDropped bounds the loads of one save that the daemon may drop: under
// a prune loop (moby's prune on the containerd store removes the lease of
// every load in flight; the stress test prunes every half second, 8
// exports at once) a load got through about every other time, and 2 of
// some 200 exports had 8 loads dropped in a row.
const maxDropped = 16

// dropUnit is the unit of the waits between dropped loads (see dropWait).
var dropUnit = 100 * time.Millisecond

// dropWait is the wait before a dropped load is sent again for the
// attempt-th time: growing from one unit to five, plus up to two at
// random, so that builds whose loads one prune dropped do not all come
// back at once (about 8 s over 15 waits).
func dropWait(attempt int) time.Duration {
	return time.Duration(min(attempt, 5))*dropUnit + rand.N(2*dropUnit)
}

// maxOdd bounds the loads of one save sent again because their connection
// was cut with no answer (see cutLoad) or they were named without their
// content (see checkLoaded): a daemon that does so to every load for a
// cause of its own (full, restarting, a proxy between) is not sent the
// archive maxDropped times.
const maxOdd = 2

// dropped classifies a load's failure: the daemon's words for content
// removed under the load (its lease, an ingest or a commit of it, a blob
// it was to reference), or the loaded image not found, match
// ErrLoadDropped.
func dropped(err error) error {
	if err == nil || errors.Is(err, ErrLoadDropped) {
		return err
	}
	msg := err.Error()
	gone := strings.Contains(msg, "not found") || strings.Contains(msg, "no such file or directory")
	if cerrdefs.IsNotFound(err) || errors.Is(err, imgutil.ErrNotFound) ||
		leaseLost(err) ||
		(gone && (strings.Contains(msg, "failed commit on ref") || strings.Contains(msg, "content digest"))) {
		return fmt.Errorf("%w: %w", ErrLoadDropped, err)
	}
	return err
}

// leaseLost reports whether the daemon says the lease of the work failed
// is gone: `docker image prune` on the containerd image store deletes the
// lease of every load and export in flight (a load: "lease does not
// exist"; an export: `lease "ID": not found`).
func leaseLost(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "lease does not exist") ||
		(strings.Contains(msg, `lease "`) && strings.Contains(msg, "not found"))
}

// sameDaemon reports whether o talks to the same daemon as s.
func (s *Store) sameDaemon(o *Store) bool {
	return o == s || (s.daemonHost() != "" && o.daemonHost() == s.daemonHost())
}

// nameAsIs tags the daemon image d name and extras (see save).
func (s *Store) nameAsIs(ctx context.Context, d *daemonImage, name string, extras []string) (string, v1.Hash, error) {
	cfg := sha256Of(d.rawCfg)
	if d.inspect.Descriptor == nil {
		cfg, _ = v1.NewHash(d.id) // the stored config's digest
	}
	var se imgutil.SaveError
	for i, n := range append([]string{name}, extras...) {
		if err := s.tag(ctx, d.id, n); err != nil {
			if i == 0 {
				se.Errors = append(se.Errors, imgutil.SaveDiagnostic{ImageName: n, Cause: err})
				for _, e := range extras {
					se.Errors = append(se.Errors, imgutil.SaveDiagnostic{ImageName: e, Cause: err})
				}
				return "", v1.Hash{}, se
			}
			se.Errors = append(se.Errors, imgutil.SaveDiagnostic{ImageName: n, Cause: err})
		}
	}
	if len(se.Errors) > 0 {
		return d.id, cfg, se
	}
	return d.id, cfg, nil
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

// loadDocker streams a docker archive of b named name into the daemon,
// leaving out the layers for which omit is true (nil: none), and returns
// the ID the daemon gives the image. byConfig says the image ID is the
// config digest (the classic store), which proves the load whatever
// happens to the name meanwhile. Otherwise (the containerd store, Podman,
// a store not known) the archive names a staging tag, proven, then moved
// to name (see staged).
func (s *Store) loadDocker(ctx context.Context, b *built.Built, name string, byConfig bool, omit func(int) bool) (string, error) {
	tag, err := archive.Tag(name)
	if err != nil {
		return "", err
	}
	var send []v1.Layer
	for i, l := range b.Layers {
		if omit == nil || !omit(i) {
			send = append(send, l)
		}
	}
	if err := s.prefetch(ctx, send); err != nil {
		return "", err
	}
	if !byConfig {
		return s.staged(ctx, b.ConfigDigest(), tag, func(staging string) (string, error) {
			entries, err := archive.Docker(b.RawConfig, b.ConfigDigest(), b.Layers, []string{staging}, omit)
			if err != nil {
				return "", err
			}
			if err := s.stream(ctx, archive.Reporting(entries, s.reporter("save"))); err != nil {
				return "", err
			}
			return s.checkLoaded(ctx, b, staging, false)
		})
	}
	entries, err := archive.Docker(b.RawConfig, b.ConfigDigest(), b.Layers, []string{tag}, omit)
	if err != nil {
		return "", err
	}
	return s.loadAndCheck(ctx, entries, b, tag, true)
}

// loadAndCheck streams entries into the daemon and proves the image b was
// loaded (see checkLoaded). Cancelled late, the load may have landed all
// the same: then it says so.
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

// checkLoaded proves a load gave the image b, with the same layers, and
// returns its ID. When byConfig (classic stores, Podman: the image ID is
// the config digest) the image is found by that ID, so a concurrent save
// that moves tag meanwhile changes nothing (the image saved stays, under
// no name); otherwise it is found by tag, which must then be a name no
// one else loads (a staging tag).
func (s *Store) checkLoaded(ctx context.Context, b *built.Built, tag string, byConfig bool) (string, error) {
	ref := tag
	if byConfig {
		ref = b.ConfigDigest().String()
	}
	res, err := s.inspect(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("finding the loaded image: %w", dropped(err))
	}
	if want := diffIDStrings(b); !slices.Equal(res.RootFS.Layers, want) {
		err := fmt.Errorf("after the load %s has layers %v, not %v", ref, res.RootFS.Layers, want)
		if !byConfig && res.Descriptor != nil && len(res.RootFS.Layers) == 0 && len(want) > 0 {
			// moby's containerd store (the only one whose inspect gives a
			// descriptor) names an image whose config it can no longer
			// read so: the load's content was collected under it (a prune
			// removed its lease) before the image held it. Seen in the
			// stress, 1 export in some 200.
			return "", fmt.Errorf("%w: %w: %w", ErrLoadDropped, errContentGone, err)
		}
		return "", err
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

// errLoadEnded closes the archive pipe once the daemon has answered.
var errLoadEnded = errors.New("image load ended")

// stream writes entries as a tar straight into ImageLoad and reads the
// daemon's answer. The writer never outlives this call: when the daemon
// answers early, or the request fails, the pipe is closed under it.
func (s *Store) stream(ctx context.Context, entries []archive.Entry, opts ...client.ImageLoadOption) error {
	pr, pw := io.Pipe()
	written := make(chan error, 1)
	go func() {
		// A failure ends the archive in order when it can (the daemon then
		// refuses it): cutting the request short would leave a caller's
		// only connection waiting for the rest (see archive.WriteToLoad).
		ended, err := archive.WriteToLoad(pw, entries)
		if ended {
			_ = pw.Close()
		} else {
			pw.CloseWithError(err)
		}
		written <- err
	}()
	res, err := s.client.ImageLoad(ctx, pr, append([]client.ImageLoadOption{client.ImageLoadWithQuiet(true)}, opts...)...)
	if err != nil {
		pr.CloseWithError(errLoadEnded)
		if werr := <-written; ours(werr) {
			return fmt.Errorf("writing the image archive: %w", werr)
		}
		return s.cutLoad(ctx, dropped(daemonError("loading the image", err)))
	}
	_, rerr := jsonstream.Read(res)
	res.Close()
	pr.CloseWithError(errLoadEnded)
	werr := <-written
	switch {
	case ours(werr):
		return fmt.Errorf("writing the image archive: %w", werr)
	case rerr != nil:
		return fmt.Errorf("loading the image: %w", dropped(rerr))
	case werr != nil:
		// The daemon stopped reading yet reported nothing.
		return fmt.Errorf("loading the image: the daemon stopped reading the archive: %w", werr)
	}
	return nil
}

// cutLoad classifies a load whose connection failed with no answer
// (ErrDaemonUnreachable): moby on the containerd image store answers a
// load whose lease a prune removed before it read the archive whole, and
// its HTTP server then closes the connection with the rest unread, so a
// client may see the connection cut rather than the answer. When the
// daemon still answers this client (one that dials as it needs, as
// pack's), the load was dropped (ErrLoadDropped and errLoadCut, no longer
// ErrDaemonUnreachable: the daemon answered) and may be sent again (see
// maxOdd); on lifecycle's one connection, cut for good, nothing answers,
// and the cut is the error.
func (s *Store) cutLoad(ctx context.Context, err error) error {
	if !errors.Is(err, ErrDaemonUnreachable) || errors.Is(err, ErrLoadDropped) || ctx.Err() != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, perr := s.client.ServerVersion(pctx, client.ServerVersionOptions{}); perr != nil {
		return err
	}
	return fmt.Errorf("%w: %w, and the daemon still answers (%s)", ErrLoadDropped, errLoadCut, err.Error())
}

// tooManyOdd counts in odd a load dropped by a cut connection or named
// without its content (err matches errLoadCut or errContentGone), and
// reports whether the save has had more than maxOdd of them.
func tooManyOdd(err error, odd *int) bool {
	if errors.Is(err, errLoadCut) || errors.Is(err, errContentGone) {
		*odd++
	}
	return *odd > maxOdd
}

// errContentGone is matched by a load whose image the daemon named
// without its content (see checkLoaded): what it left out goes with the
// next load.
var errContentGone = errors.New("the loaded image's content is gone")

// errLoadCut is matched by a load whose connection was cut with no answer
// while the daemon still answers (see cutLoad).
var errLoadCut = errors.New("the connection of the load was cut with no answer")

// pingTimeout bounds the question cutLoad asks the daemon.
const pingTimeout = 10 * time.Second

// ours reports whether a failure to write the archive is the writer's own
// (a layer that could not be read) rather than the reader going away, in
// which case the daemon's answer or the context says what happened.
func ours(werr error) bool {
	return werr != nil && !errors.Is(werr, errLoadEnded) && !errors.Is(werr, io.ErrClosedPipe)
}
