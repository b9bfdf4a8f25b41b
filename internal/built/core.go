package built

// The editable core (imgutil.CNBImageCore) registers how it builds when its
// package is initialised, so that backends build it without the core
// showing a method of an internal type in the public API.
var builders struct {
	of, forSave func(core any) (*Built, error)
}

// Register is called once, by package imgutil's init, with the core's
// build and build-for-save.
func Register(of, forSave func(core any) (*Built, error)) {
	builders.of, builders.forSave = of, forSave
}

// Of returns the image core (an *imgutil.CNBImageCore) as edited so far,
// frozen, memoized until its next edit.
func Of(core any) (*Built, error) { return builders.of(core) }

// ForSave is Of for a save: unless the digest is preserved, created time
// and history are first normalized as a save writes them, and from then on
// the image is what was saved.
func ForSave(core any) (*Built, error) { return builders.forSave(core) }
