package local

import (
	"context"

	"github.com/imgbridge/imgutil/internal/built"
)

// classicStore is the classic (graphdriver) store: the image ID is the
// config digest, and a load never reads a layer whose chain the store
// holds. A save sends a docker archive without those layers (the chains
// of every image the Store inspected or saved), named as the user asked:
// the store names an image only once it is whole, and the ID proves it.
type classicStore struct{}

func (classicStore) String() string { return "classic store" }

func (classicStore) loadPartial(ctx context.Context, s *Store, b *built.Built, name string) (string, error) {
	held := make([]bool, len(b.Layers))
	omitted := 0
	for i, c := range chainIDs(b.Config.RootFS.DiffIDs) {
		if s.hasChain(c) {
			held[i] = true
			omitted++
		}
	}
	id, err := s.loadDocker(ctx, b, name, true, func(i int) bool { return held[i] })
	if omitted > 0 && podmanRefusal(err) {
		// Podman's answer to a docker archive with a layer left out (a
		// Podman not recognised from its images): it is Podman, for the
		// rest of the Store's life.
		return s.learnKind(podmanService{}).loadPartial(ctx, s, b, name)
	}
	return id, err
}

func (classicStore) loadAll(ctx context.Context, s *Store, b *built.Built, name string) (string, error) {
	return s.loadDocker(ctx, b, name, true, nil)
}
