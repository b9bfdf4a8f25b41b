package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	cerrdefs "github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
	"github.com/imgbridge/imgutil/internal/layer"
)

// Store is the bridge to one Docker daemon: it inspects, loads, tags and
// removes images, and holds the layers read from the daemon in a temp
// directory until Close. It is safe for concurrent use.
type Store struct {
	client   *serialClient
	platform imgutil.Platform
	info     once[daemonInfo]
	// snapshotter is whether the daemon uses the containerd image store.
	snapshotter once[bool]
	// probeRefusedUntil is when (unix nanoseconds) the daemon may be asked
	// for a manifest probe again after it refused one (see learnManifests).
	probeRefusedUntil atomic.Int64
	// swept is set once the Store looked for names killed processes left
	// (see sweepTags).
	swept atomic.Bool
	// ledger records the short-lived names made here; one Store in
	// sweepOdds sweeps with no record to go on (see sweepTags).
	ledger    nameLedger
	sweepOdds int
	// probeMinSize is the image size from which GetLayer reads through a
	// probe image (defaultProbeMinSize).
	probeMinSize int64
	// requested is set once a request succeeded: a negotiating client then
	// knows the API version it speaks.
	requested atomic.Bool
	fetcher   *fetcher
	manifests *manifestCache
	// caches are handed to the layer files the Store makes.
	caches layer.Caches

	// mu guards kind, chains, layers and progress.
	mu sync.Mutex
	// kind is the kind of the daemon's store, once known (see kindFor).
	kind daemonKind
	// progress receives progress updates; nil for none.
	progress func(imgutil.Progress)
	// chains are the chain IDs the daemon is known to hold: those of every
	// image this Store inspected or saved.
	chains map[v1.Hash]bool
	// layers are the layers this Store knows, by diffID.
	layers map[v1.Hash]v1.Layer
	// singlePlatform are the images found without the Store's platform:
	// single-platform images of another platform, used as they are.
	singlePlatform map[string]bool
	// indexOf maps the manifest digest of one platform of a
	// multi-platform image (what inspect with a platform calls its ID, which
	// ImageSave and ImageHistory do not take) to the image's own ID, the
	// index digest, which they take with the platform.
	indexOf map[string]string
}

// NewStore returns a Store that talks to the daemon through dockerClient.
func NewStore(dockerClient DockerClient) *Store {
	return NewStoreWithPlatform(dockerClient, imgutil.Platform{})
}

// NewStoreWithPlatform returns a Store that asks the daemon for platform's
// variant of multi-platform images, where the daemon's API allows (1.49+).
func NewStoreWithPlatform(dockerClient DockerClient, platform imgutil.Platform) *Store {
	// Calls on the caller's client are made one at a time, whatever runs
	// concurrently here: the client may serve a single request at once.
	serial := newSerialClient(dockerClient)
	s := &Store{
		client: serial, platform: platform, manifests: newManifestCache(), caches: layer.CachesFromEnv(), probeMinSize: defaultProbeMinSize,
		ledger: newNameLedger(hostOf(dockerClient)), sweepOdds: defaultSweepOdds,
		chains: map[v1.Hash]bool{}, layers: map[v1.Hash]v1.Layer{}, singlePlatform: map[string]bool{}, indexOf: map[string]string{},
	}
	s.fetcher = newFetcher(serial, s.saveOptions, func() func(string, int64, int64) { return s.reporter("download") })
	s.fetcher.exportRef = s.exportRef
	return s
}

// saveOptions are the options of an ImageSave of imageID: the Store's
// platform, where the daemon's API takes one (1.48), so a multi-platform
// image streams only the variant used; none for a single-platform image
// of another platform (see inspect).
func (s *Store) saveOptions(ctx context.Context, imageID string) []client.ImageSaveOption {
	if s.anyPlatform(imageID) {
		return nil
	}
	if p := s.ociPlatform(); p != nil && s.supports(ctx, manifestsAPI) {
		return []client.ImageSaveOption{client.ImageSaveWithPlatforms(*p)}
	}
	return nil
}

// anyPlatform reports whether imageID is a single-platform image found
// without the Store's platform: calls about it name no platform.
func (s *Store) anyPlatform(imageID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.singlePlatform[imageID]
}

// SetProgress sends the Store's progress updates (loads, exports, layer
// reads) to f; nil stops them.
func (s *Store) SetProgress(f func(imgutil.Progress)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.progress = f
}

// reporter is the archive progress function for phase, nil for none.
func (s *Store) reporter(phase string) func(item string, done, total int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return archive.Reporter(s.progress, phase)
}

// Close removes the layers the Store read from the daemon and their temp
// directory. The Store must not be used after.
func (s *Store) Close() error { return s.fetcher.close() }

func (s *Store) daemon(ctx context.Context) (daemonInfo, error) {
	return s.info.get(ctx, func(ctx context.Context) (daemonInfo, error) { return fetchInfo(ctx, s.client) })
}

// apiVersion returns the API version requests use: the client's own once
// it has talked to the daemon (a negotiating *client.Client then speaks the
// version both know), else the daemon's (ServerVersion, which is slow on
// current daemons: it asks containerd and runc theirs).
//
// A client pinned to an older version than the daemon's (DOCKER_API_VERSION,
// WithAPIVersion) refuses options of newer ones before sending: the lower
// of the two is taken.
func (s *Store) apiVersion(ctx context.Context) (string, error) {
	cv := s.client.ClientVersion()
	if s.requested.Load() && cv != "" {
		return cv, nil
	}
	d, err := s.daemon(ctx)
	if err != nil {
		return "", err
	}
	if cv != "" && versions.GreaterThanOrEqualTo(d.apiVersion, cv) {
		return cv, nil
	}
	return d.apiVersion, nil
}

func (s *Store) supports(ctx context.Context, v string) bool {
	have, err := s.apiVersion(ctx)
	return err == nil && versions.GreaterThanOrEqualTo(have, v)
}

// containerdStoreAPI is the first API version of a daemon that may keep
// images in the containerd image store.
const containerdStoreAPI = "1.43"

// usesContainerdStore reports whether the daemon keeps images in the containerd
// image store. Inspected images tell from API 1.48: only that store gives
// image descriptors. Info (slow) is asked only of older daemons.
func (s *Store) usesContainerdStore(ctx context.Context, opened []*daemonImage) (bool, error) {
	if len(opened) > 0 {
		if opened[0].inspect.Descriptor != nil {
			return true, nil
		}
		if s.supports(ctx, manifestsAPI) {
			return false, nil
		}
	}
	// The containerd image store came with Docker 24 (API 1.43): older
	// daemons (Debian's 20.10, Podman's 1.41 service) are not asked Info,
	// which is slow (over half a second on Podman).
	if !s.supports(ctx, containerdStoreAPI) {
		return false, nil
	}
	return s.snapshotter.get(ctx, func(ctx context.Context) (bool, error) { return fetchContainerdStore(ctx, s.client) })
}

// ociPlatform is the platform to ask the daemon for, or nil: a partial one
// (pack passes an OS alone) is not sent, as the daemon refuses it; the
// daemon then picks its default variant.
func (s *Store) ociPlatform() *ocispec.Platform {
	if s.platform.OS == "" || s.platform.Architecture == "" {
		return nil
	}
	return &ocispec.Platform{OS: s.platform.OS, Architecture: s.platform.Architecture, Variant: s.platform.Variant, OSVersion: s.platform.OSVersion}
}

// inspect asks the daemon about image; a missing image matches
// imgutil.ErrNotFound. Where the daemon takes a platform, the Store's is
// asked for; an image that has none of that platform but is a
// single-platform image is used whatever its platform (the platform only
// chooses among the manifests of a multi-platform image), and is
// remembered so that later calls about it name no platform.
func (s *Store) inspect(ctx context.Context, name string, extra ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	opts := slices.Clone(extra)
	withPlatform := false
	if p := s.ociPlatform(); p != nil && s.supports(ctx, platformAPI) {
		opts = append(opts, client.ImageInspectWithPlatform(p))
		withPlatform = true
	}
	res, err := s.client.ImageInspect(ctx, name, opts...)
	if withPlatform && cerrdefs.IsNotFound(err) {
		res, err = s.inspectSinglePlatform(ctx, name, extra)
	} else if withPlatform && err == nil {
		s.learnIndex(ctx, name, res.ID)
	}
	if cerrdefs.IsNotFound(err) {
		s.requested.Store(true)
		return res, fmt.Errorf("image %s: %w", name, imgutil.ErrNotFound)
	}
	if err != nil {
		return res, daemonError("inspecting image "+name, err)
	}
	s.requested.Store(true)
	return res, nil
}

// learnIndex records, when name is a multi-platform image one of whose
// manifests is id, the image's own ID (see indexOf). One more inspect, for
// images opened with a whole platform only.
func (s *Store) learnIndex(ctx context.Context, name, id string) {
	if !s.supports(ctx, manifestsAPI) {
		return
	}
	top, err := s.client.ImageInspect(ctx, name, client.ImageInspectWithManifests(true))
	if err != nil || top.ID == id {
		return
	}
	for _, m := range top.Manifests {
		if m.ID == id {
			s.mu.Lock()
			s.indexOf[id] = top.ID
			s.mu.Unlock()
			return
		}
	}
}

// exportRef is what ImageSave and ImageHistory take for the image id: the
// multi-platform image's ID for one of its platforms (asked for with the
// Store's platform, see saveOptions), else id.
func (s *Store) exportRef(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if top, ok := s.indexOf[id]; ok {
		return top
	}
	return id
}

// inspectSinglePlatform inspects name without a platform and returns it if
// it is a single-platform image; a multi-platform one is "not found".
func (s *Store) inspectSinglePlatform(ctx context.Context, name string, extra []client.ImageInspectOption) (client.ImageInspectResult, error) {
	res, err := s.client.ImageInspect(ctx, name, append(slices.Clone(extra), client.ImageInspectWithManifests(true))...)
	if err != nil {
		return res, err
	}
	images := 0
	for _, m := range res.Manifests {
		if m.Kind == image.ManifestKindImage {
			images++
		}
	}
	if images > 1 {
		return res, cerrdefs.ErrNotFound.WithMessage("image " + name + " has no manifest for the platform asked for")
	}
	s.mu.Lock()
	s.singlePlatform[res.ID] = true
	s.mu.Unlock()
	return res, nil
}

// open returns the daemon image name as a v1.Image whose layers are read
// lazily; with history it also reads the image history.
func (s *Store) open(ctx context.Context, name string, history bool) (*daemonImage, error) {
	// The raw answer tells what this client's types no longer carry (the
	// container config, by which Podman is known).
	var raw bytes.Buffer
	res, err := s.inspect(ctx, name, client.ImageInspectWithRawResponse(&raw))
	if err != nil {
		return nil, err
	}
	var legacy struct {
		ContainerConfig *struct{ Hostname string }
	}
	_ = json.Unmarshal(raw.Bytes(), &legacy)
	if podmanAnswer(res.ID, res.RepoTags, legacy.ContainerConfig) {
		s.learnKind(podmanService{})
	}
	var items []image.HistoryResponseItem
	if history {
		var opts []client.ImageHistoryOption
		if p := s.ociPlatform(); p != nil && s.supports(ctx, platformAPI) && !s.anyPlatform(res.ID) {
			opts = append(opts, client.ImageHistoryWithPlatform(*p))
		}
		h, err := s.client.ImageHistory(ctx, s.exportRef(res.ID), opts...)
		if err != nil {
			return nil, daemonError("reading history of image "+name, err)
		}
		items = h.Items
	}
	img, err := newDaemonImage(s, res.InspectResponse, items)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", name, err)
	}
	s.remember(img.cfg.RootFS.DiffIDs, img.layersAsV1())
	return img, nil
}

// remember records that the daemon holds the chains of diffIDs, and layers.
func (s *Store) remember(diffIDs []v1.Hash, layers []v1.Layer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range chainIDs(diffIDs) {
		s.chains[c] = true
	}
	for _, l := range layers {
		if d, err := l.DiffID(); err == nil {
			if _, ok := s.layers[d]; !ok {
				s.layers[d] = l
			}
		}
	}
}

func (s *Store) hasChain(c v1.Hash) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chains[c]
}

// Contains reports whether the daemon has an image named or identified by
// identifier. A daemon that cannot be asked reports false; ContainsE tells.
func (s *Store) Contains(identifier string) bool {
	ok, _ := s.ContainsE(context.Background(), identifier)
	return ok
}

// ContainsE reports whether the daemon has the image, and an error when the
// daemon could not be asked (not when the image is missing).
func (s *Store) ContainsE(ctx context.Context, identifier string) (bool, error) {
	_, err := s.inspect(ctx, identifier)
	if errors.Is(err, imgutil.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Delete removes the image named or identified by identifier, untagging
// all its names. A missing image matches imgutil.ErrNotFound.
func (s *Store) Delete(identifier string) error {
	return s.delete(context.Background(), identifier)
}

func (s *Store) delete(ctx context.Context, identifier string) error {
	_, err := s.client.ImageRemove(ctx, identifier, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("deleting image %s: %w", identifier, imgutil.ErrNotFound)
	}
	if err != nil {
		return daemonError("deleting image "+identifier, err)
	}
	return nil
}

// LayerByDiffID returns a layer this Store knows (of an image it opened, or
// added with AddLayer) by diffID; its bytes are read from the daemon when
// first opened.
func (s *Store) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.layers[h]; ok {
		return l, nil
	}
	return nil, errLayerNotFound(h)
}

// AddLayer reads the layer file at fromPath (plain or gzip tar) once and
// returns it as a layer this Store knows.
func (s *Store) AddLayer(fromPath string) (v1.Layer, error) {
	l, err := layer.FromFile(fromPath, types.DockerLayer, s.caches)
	if err != nil {
		return nil, err
	}
	s.remember(nil, []v1.Layer{l})
	return l, nil
}

func errLayerNotFound(h v1.Hash) error { return imgutil.ErrLayerNotFound{DiffID: h.String()} }

// chainIDs returns the chain ID of each layer of a stack of diffIDs.
func chainIDs(diffIDs []v1.Hash) []v1.Hash {
	out := make([]v1.Hash, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = sha256Of([]byte(out[i-1].String() + " " + d.String()))
	}
	return out
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
