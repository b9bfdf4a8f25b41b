// Package remote edits images in OCI registries: an Image starts from a
// base image in a registry, reuses layers of a previous image, and is
// pushed uploading only the blobs the registry lacks (mounting them from
// another repository of the same registry where it can).
//
// Where things are: image.go (NewImage, opening base and previous images,
// Found), save.go (a push: new layers compressed once while they upload,
// the manifest last; SaveFile), valid.go (Valid: every blob there),
// access.go (credentials and per-registry settings), index.go (NewIndex),
// options.go, errors.go.
package remote
