package remote

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imgbridge/imgutil"
)

// ImageIndex is an index in a registry.
type ImageIndex struct {
	*imgutil.CNBIndex
}

// NewIndex returns an index named repoName. With imgutil.FromBaseIndex it
// starts from an index in a registry (reached with imgutil.WithKeychain,
// imgutil.WithInsecure); Push uploads it with its images.
func NewIndex(repoName string, ops ...imgutil.IndexOption) (*imgutil.CNBIndex, error) {
	var o imgutil.IndexOptions
	for _, op := range ops {
		if err := op(&o); err != nil {
			return nil, err
		}
	}
	if o.BaseIndex == nil && o.BaseIndexRepoName != "" {
		var nameOpts []name.Option
		if o.Insecure {
			nameOpts = append(nameOpts, name.Insecure)
		}
		ref, err := name.ParseReference(o.BaseIndexRepoName, nameOpts...)
		if err != nil {
			return nil, fmt.Errorf("index name %q: %w: %w", o.BaseIndexRepoName, imgutil.ErrInvalidArgument, err)
		}
		a := newAccess(o.Keychain, nil)
		idx, err := remote.Index(ref, remote.WithContext(context.Background()), remote.WithAuthFromKeychain(a.keychain),
			remote.WithTransport(imgutil.GetTransport(o.Insecure)))
		if err != nil {
			return nil, registryError("reading base index "+o.BaseIndexRepoName, err)
		}
		o.BaseIndex = idx
	}
	return imgutil.NewCNBIndex(repoName, o)
}
