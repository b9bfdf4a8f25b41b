// Package containerd saves and edits images straight in a containerd
// namespace, without a Docker daemon or a registry: "default" (ctr,
// nerdctl), "k8s.io" (the CRI plugin: images a Kubernetes node runs at
// once), "moby" (Docker with the containerd image store).
//
// An Image starts from an image of the namespace (imgutil.FromBaseImage),
// reuses layers of another (imgutil.WithPreviousImage): their blobs are
// referenced where they are, never copied. Save writes into the content
// store only the blobs it lacks (new layers go uncompressed: their digest
// is their diffID, nothing is compressed), under a lease; unpacks the image
// for the snapshotter (overlayfs unless WithSnapshotter, none with
// WithoutUnpack); then points each name's record at it. No name moves
// before the image is whole and unpacked.
//
// It is a module of its own, so that containerd's client reaches only the
// builds of callers who use this backend.
//
// Where things are: image.go (NewImage, options, Found, Valid, Identifier,
// Delete, SaveFile), read.go (images of the namespace as
// go-containerregistry images, read from the content store, checked),
// save.go (a save).
package containerd
