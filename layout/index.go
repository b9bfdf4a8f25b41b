package layout

import (
	"errors"
	"fmt"

	"github.com/imgbridge/imgutil"
)

// ImageIndex is an index saved as an OCI layout.
type ImageIndex struct {
	*imgutil.CNBIndex
}

// NewIndex returns an index named repoName. With imgutil.FromBaseIndex(path)
// it starts from the index of the layout at path; SaveDir writes it under
// the XDG runtime path (imgutil.WithXDGRuntimePath).
func NewIndex(repoName string, ops ...imgutil.IndexOption) (*imgutil.CNBIndex, error) {
	var o imgutil.IndexOptions
	for _, op := range ops {
		if err := op(&o); err != nil {
			return nil, err
		}
	}
	if o.BaseIndex == nil && o.BaseIndexRepoName != "" {
		idx, err := openIndex(o.BaseIndexRepoName)
		switch {
		case errors.Is(err, errNoLayout):
			// No layout there yet: the index starts empty.
		case err != nil:
			return nil, fmt.Errorf("reading base index: %w", err)
		default:
			o.BaseIndex = idx
		}
	}
	return imgutil.NewCNBIndex(repoName, o)
}
