// Package containerd saves and edits images straight in a containerd
// namespace, without a Docker daemon or a registry: "default" (ctr,
// nerdctl), "k8s.io" (the CRI plugin: images a Kubernetes node runs at
// once), "moby" (Docker with the containerd image store).
//
// An Image starts from an image of the namespace (imgutil.FromBaseImage),
// reuses layers of another (imgutil.WithPreviousImage): their blobs are
// referenced where they are, never copied. Save writes into the content
// store only the blobs it lacks (new layers gzip-compressed, once: their
// digests are kept, and a form an earlier save stored is taken as it is;
// see WithCompression), under a lease; unpacks the image
// for the snapshotter (the namespace's default unless WithSnapshotter,
// none with WithoutUnpack); then points each name's record at it. No name
// moves before the image is whole and unpacked. A save lasts as long as it
// needs: its lease is followed by a new one every third of its term
// (lease.go).
//
// SaveIndex saves a multi-platform image (an index): every platform's
// blobs, one platform unpacked (imgutil.WithDefaultPlatform, else this
// machine's); OpenIndex reads one back. One platform of such an image
// opens as a base or previous image with imgutil.WithDefaultPlatform.
//
// Names are image references normalised as ctr and nerdctl do
// (docker.io/library/app:1); the namespace is WithNamespace's. This
// package's options are refused by the other backends.
//
// It is a module of its own, so that containerd's client reaches only the
// builds of callers who use this backend.
//
// Where things are: image.go (NewImage, options, Found, Valid, Identifier,
// Delete, SaveFile), compress.go (how new layers are stored), read.go (images of the namespace as
// go-containerregistry images, read from the content store, checked),
// save.go (a save), lease.go (its leases), index.go (SaveIndex),
// openindex.go (OpenIndex).
package containerd
