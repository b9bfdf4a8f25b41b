// Package remote edits images in OCI registries: an Image starts from a
// base image in a registry, reuses layers of a previous image, and is
// pushed uploading only the blobs the registry lacks (mounting them from
// another repository of the same registry where it can).
package remote
