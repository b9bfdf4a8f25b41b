package local

import (
	"context"

	"github.com/imgbridge/imgutil/internal/built"
)

// daemonKind is how a save reaches one kind of image store, each in its
// own file: the classic graphdriver store (classic.go), the containerd
// image store (containerdstore.go), Podman's Docker-compatible service
// (podman.go), and a store not known yet (below). A Store chooses its kind
// once it knows (kindFor) and keeps it.
type daemonKind interface {
	String() string
	// loadPartial loads b under name (a tag), leaving out the layers the
	// daemon holds (those read from it: *daemonLayer), and returns the
	// image ID, proven to be b. A failure that sending every layer may
	// mend is told by worthSendingAll.
	loadPartial(ctx context.Context, s *Store, b *built.Built, name string) (string, error)
	// loadAll loads b under name with every layer, and returns its ID.
	loadAll(ctx context.Context, s *Store, b *built.Built, name string) (string, error)
}

// kindFor returns the kind of the Store's daemon: the one it knows, else
// the one the images opened from it tell (remembered), else unknownStore
// (nothing opened: nothing to leave out, nothing learnt).
func (s *Store) kindFor(ctx context.Context, opened []*daemonImage) (daemonKind, error) {
	if k := s.knownKind(); k != nil {
		return k, nil
	}
	if len(opened) == 0 {
		return unknownStore{}, nil
	}
	containerd, err := s.usesContainerdStore(ctx, opened)
	if err != nil {
		return nil, err
	}
	var k daemonKind = classicStore{}
	if containerd {
		k = containerdStore{}
	}
	return s.learnKind(k), nil
}

// kindOr is the kind the Store learnt, else k.
func (s *Store) kindOr(k daemonKind) daemonKind {
	if known := s.knownKind(); known != nil {
		return known
	}
	return k
}

// knownKind is the kind the Store learnt, nil before.
func (s *Store) knownKind() daemonKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kind
}

// learnKind records k as the Store's kind, unless one is known, and
// returns the Store's kind. Podman, known by a refusal or by how it
// describes images, replaces what was taken for a classic store.
func (s *Store) learnKind(k daemonKind) daemonKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, podman := k.(podmanService)
	if s.kind == nil || podman {
		s.kind = k
	}
	return s.kind
}

// unknownStore is a daemon no image was opened from yet: every layer is
// sent, under a staging name (the image ID may or may not be the config
// digest), proven, then moved to the user's name.
type unknownStore struct{}

func (unknownStore) String() string { return "unknown store" }

func (k unknownStore) loadPartial(ctx context.Context, s *Store, b *built.Built, name string) (string, error) {
	return k.loadAll(ctx, s, b, name)
}

func (unknownStore) loadAll(ctx context.Context, s *Store, b *built.Built, name string) (string, error) {
	return s.loadDocker(ctx, b, name, false, nil)
}
