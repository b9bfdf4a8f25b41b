// Package imgutil is the contract shared by every image backend: the Image
// interface, image and index options, media types, history normalization and
// the errors callers match with errors.Is and errors.As; and CNBImageCore,
// the one editable image every backend embeds (a v1.Image that answers for
// the edits made so far; a save normalizes created time and history).
//
// The backends live in sub-packages: local (a Docker daemon), remote (an OCI
// registry) and layout (an OCI image layout on disk, with layout/sparse).
package imgutil
