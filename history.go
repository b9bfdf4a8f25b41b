package imgutil

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// NormalizedDateTime is the created time images get by default, so that
// builds of the same inputs are byte-for-byte reproducible.
var NormalizedDateTime = time.Date(1980, time.January, 1, 0, 0, 1, 0, time.UTC)

// NormalizedHistory returns history with its empty-layer entries dropped when
// the rest match nLayers one to one, else nLayers blank entries.
func NormalizedHistory(history []v1.History, nLayers int) []v1.History {
	kept := make([]v1.History, 0, nLayers)
	for _, h := range history {
		if !h.EmptyLayer {
			kept = append(kept, h)
		}
	}
	if len(kept) == nLayers {
		return kept
	}
	return make([]v1.History, nLayers)
}
