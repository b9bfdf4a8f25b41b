// Package local edits images in a Docker daemon.
//
// An Image starts from a base image in the daemon (FromBaseImage), can reuse
// layers of a previous image (WithPreviousImage), and is saved by streaming
// an archive straight into the daemon's image load. Only layers the daemon
// does not already hold are sent: on the classic (graphdriver) store the
// daemon skips a layer whose chain it has; on the containerd image store
// every layer is sent for now.
//
// Layers of the base or previous image are read from the daemon only when
// their bytes are truly needed (GetLayer, a reused layer on a new chain,
// SaveFile), with one streamed `docker save` per image per need. Those
// layers live in a temp directory that belongs to the Store: Image.Close
// (or Store.Close for a shared Store) removes it.
package local
