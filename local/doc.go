// Package local edits images in a Docker daemon.
//
// An Image starts from a base image in the daemon (FromBaseImage), can reuse
// layers of a previous image (WithPreviousImage), and is saved by streaming
// an archive straight into the daemon's image load, sending only what the
// daemon lacks:
//   - on the classic (graphdriver) store, a docker archive without the layers
//     whose chain the daemon holds (the daemon never reads them);
//   - on the containerd image store, an OCI layout whose manifest references
//     the blobs the store holds for base and previous layers and carries only
//     new blobs; the load is staged under a temporary tag and the image's
//     name moves only once the daemon reports all its content available,
//     else every layer is sent. The stored layer descriptors this needs come
//     from the image record of an image this package saved (its manifest
//     rides along as an annotation the inspect shows, checked by digest),
//     else from a manifest probe: a tiny image listing the stored manifests
//     as blobs, loaded, exported and removed, never the image's own archive.
//     They are kept in a content-addressed cache (ManifestCacheEnv);
//   - on Podman's Docker-compatible service, an OCI archive that leaves out
//     the layers its store holds by diffID (Podman refuses a docker archive
//     with a layer left out). Podman is recognised by how it describes the
//     images a save inspects anyway; failing that, by that refusal.
//
// Every call on the caller's Docker client is made one at a time, and every
// answer is read to its end: a client may serve a single request at once on
// one connection that cannot be closed (the lifecycle's, when it runs as
// root), where a half-read answer would become the next request's. A load
// whose archive cannot be written to its end (a layer file changed or
// removed) is ended in order with a block no tar reader accepts, so the
// daemon refuses it and the connection stays usable. Such a client cannot
// abandon a request: a cancelled context returns once the daemon answers.
//
// Where the store is not known to be classic, every load goes under a
// staging tag of its own and the name moves only to a proven image; saves
// of one name at the same time each get a true answer (the ID of the image
// saved, or imgutil.ErrTagTakenOver). Staging and probe tags name their
// host, process and start time; the first save of each Store removes those
// of processes that are gone (or older than an hour, for other hosts),
// where the caller's client can list images.
//
// Layers of the base or previous image are read from the daemon only when
// their bytes are needed (GetLayer, a reused layer on a new chain, SaveFile,
// a copy to another store): one streamed ImageSave per image, shared by
// concurrent requests, keeping only the layers asked for. GetLayer asks for
// a short-lived image of the layers up to the one wanted, so that daemons
// which build their whole archive first export only those. Layers read
// belong to the Store until Image.Close (or Store.Close for a Store shared
// through NewImageInStore). On Linux each is an open file with no name
// (unlinked once written), so a process that exits without Close leaves
// nothing; elsewhere they live in a temp directory that Close removes, as
// does a later process for those of processes that exited without Close.
//
// Where things are: store.go and image.go (the Store, one per daemon, and
// Image); save.go (a save: what is sent, the streamed load); kind.go (how a
// Store learns the kind of its daemon's store, once, and the store not
// known yet), then one file per kind with all of its save: classic.go (the
// classic store), containerdstore.go (the containerd image store, with
// manifests.go and manifestprobe.go: how the blobs it holds are learnt),
// podman.go (Podman's service); ocisave.go (OCI archives that leave blobs
// out); staged.go (staging names, proven loads); save.go (a load the daemon
// dropped under a prune is sent again); tagsweep.go (names killed processes
// left, found through the ledger of names; whose they are is
// internal/owner's call); reads.go, fetch.go, download.go and probe.go (lazy layer
// reads); savefile.go and archivecheck.go (exports, the daemon's own
// archive checked); index.go (multi-platform images: Store.SaveIndex into
// the containerd image store, Store.Platforms); manifestsize.go; serial.go (one call at a time on the
// caller's client, answers read to their end). kind_test.go makes each
// refusal and partial load happen against a fake daemon
// (fakedaemon_test.go); local_test.go proves the saves on real daemons.
//
// Failures are matchable: imgutil.SaveError per name, imgutil.ErrNotFound,
// imgutil.ErrLayerNotFound, ErrDaemonUnreachable, ErrLoadDropped,
// ErrIndexNotSupported. FoundE and ContainsE tell
// a missing image from a daemon that could not be asked; the *Context
// variants can be cancelled.
package local
