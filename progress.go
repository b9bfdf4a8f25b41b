package imgutil

// Progress is one update of a long operation on an image.
type Progress struct {
	// Phase is what is happening: "save" (loading into a daemon), "push"
	// (uploading to a registry), "export" (SaveFile), "download" (reading
	// layers back from a daemon).
	Phase string
	// Item is the blob being moved (e.g. "sha256:…"), "" for a whole-image
	// count.
	Item string
	// Complete is how many bytes of Item have moved; Total its size (0
	// when unknown).
	Complete, Total int64
}

// WithProgress sends progress updates to f: at most one per MiB moved and
// one when an item completes. f is called from the goroutine doing the
// work and must return quickly. Default: no updates.
func WithProgress(f func(Progress)) func(*ImageOptions) {
	return func(o *ImageOptions) { o.Progress = f }
}
