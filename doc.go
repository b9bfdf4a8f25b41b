// Package imgutil is the contract shared by every image backend: the Image
// interface, image and index options, media types, history normalization and
// the errors callers match with errors.Is and errors.As; and CNBImageCore,
// the one editable image every backend embeds (a v1.Image that answers for
// the edits made so far; a save normalizes created time and history).
//
// The backends live in sub-packages: local (a Docker daemon: the classic
// store, the containerd image store and Podman, each in a file of its own),
// remote (an OCI registry) and layout (an OCI image layout on disk, with
// layout/sparse). Every backend's *Image is a ContextImage: the calls that
// reach a store take a context, and stop leaving nothing half-written.
//
// Where things are: image.go (the Image interface), context.go
// (ContextImage), options.go (image options), errors.go (the error classes,
// which match containerd's errdefs classes too: cerrdefs.IsNotFound holds
// for ErrNotFound), mediatypes.go, history.go, progress.go; cnb_*.go (the
// core: cnb_image.go makes it, cnb_config.go and cnb_layers.go edit it,
// cnb_build.go freezes it for a save, reached by backends through
// internal/built, cnb_manifest.go answers for its manifest); index*.go (the
// editable image index every backend's NewIndex returns).
//
// Beneath: internal/layer (layer files scanned once, verified as they
// stream, compressed once; the caches an image or Store owns, made from the
// environment when it is made), internal/archive (tar and docker-archive
// writing, checked as written), internal/verified (files known to match
// their digest), internal/built (an edited image frozen for saving),
// internal/owner (who owns a short-lived name or temp file, and whether it
// may be removed: one policy for every backend, pid namespaces included).
package imgutil
