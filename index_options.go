package imgutil

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// IndexOption configures a new index or an index push.
type IndexOption func(options *IndexOptions) error

// IndexOptions holds what the IndexOption functions set.
type IndexOptions struct {
	BaseIndexRepoName string
	MediaType         types.MediaType
	LayoutIndexOptions
	RemoteIndexOptions
	IndexPushOptions

	// BaseIndex must be set by the backend, or by FromBaseIndexInstance.
	BaseIndex v1.ImageIndex
}

// LayoutIndexOptions are the index options of the layout backend.
type LayoutIndexOptions struct {
	XdgPath string
}

// RemoteIndexOptions are the index options of the remote backend.
type RemoteIndexOptions struct {
	Keychain authn.Keychain
	Insecure bool
}

// IndexPushOptions are the options of CNBIndex.Push.
type IndexPushOptions struct {
	Purge           bool
	DestinationTags []string
}

// FromBaseIndex starts the index from the index with this name. Default: an
// empty index.
func FromBaseIndex(name string) func(*IndexOptions) error {
	return func(o *IndexOptions) error {
		o.BaseIndexRepoName = name
		return nil
	}
}

// FromBaseIndexInstance starts the index from index.
func FromBaseIndexInstance(index v1.ImageIndex) func(options *IndexOptions) error {
	return func(o *IndexOptions) error {
		o.BaseIndex = index
		return nil
	}
}

// WithMediaType sets the index media type: an OCI image index or a Docker
// manifest list. Default: the base index's, else OCI.
func WithMediaType(mediaType types.MediaType) func(options *IndexOptions) error {
	return func(o *IndexOptions) error {
		if mediaType != types.OCIImageIndex && mediaType != types.DockerManifestList {
			return fmt.Errorf("index media type %q: %w", mediaType, ErrUnknownMediaType(mediaType))
		}
		o.MediaType = mediaType
		return nil
	}
}

// WithXDGRuntimePath sets the directory SaveDir writes indexes under.
// Default: $XDG_RUNTIME_DIR/imgutil, or the user cache directory.
func WithXDGRuntimePath(xdgPath string) func(options *IndexOptions) error {
	return func(o *IndexOptions) error {
		o.XdgPath = xdgPath
		return nil
	}
}

// WithKeychain sets the credentials used to reach registries. Default:
// authn.DefaultKeychain.
func WithKeychain(keychain authn.Keychain) func(options *IndexOptions) error {
	return func(o *IndexOptions) error {
		o.Keychain = keychain
		return nil
	}
}

// WithInsecure allows plain HTTP and unverified TLS for the index's registry.
// Default: HTTPS with verified certificates only.
func WithInsecure() func(options *IndexOptions) error {
	return func(o *IndexOptions) error {
		o.Insecure = true
		return nil
	}
}

// WithPurge makes Push delete the saved index directory after pushing.
// Default: false.
func WithPurge(purge bool) func(options *IndexOptions) error {
	return func(o *IndexOptions) error {
		o.Purge = purge
		return nil
	}
}

// WithTags makes Push also tag the index with these tags. Default: none.
func WithTags(tags ...string) func(options *IndexOptions) error {
	return func(o *IndexOptions) error {
		o.DestinationTags = append(o.DestinationTags, tags...)
		return nil
	}
}
