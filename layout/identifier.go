package layout

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
)

// ImageRefNameKey is the annotation that names an image in a layout's index.
const ImageRefNameKey = "org.opencontainers.image.ref.name"

// Identifier identifies an image saved in a layout: the layout path and the
// manifest digest.
type Identifier struct {
	Digest string
	Path   string
}

// String returns "path@digest".
func (i Identifier) String() string {
	return fmt.Sprintf("%s@%s", i.Path, i.Digest)
}

// ParseIdentifier parses "path@sha256:hex" back into an Identifier. Its
// errors match imgutil.ErrInvalidArgument and say what the existing
// library says (callers match the texts): the format, or the digest's own
// fault.
func ParseIdentifier(identifier string) (Identifier, error) {
	p, d, ok := strings.Cut(identifier, "@")
	if !ok || p == "" || strings.Contains(d, "@") {
		return Identifier{}, fmt.Errorf("identifier %s does not have the format '[path]@[digest]': %w", identifier, imgutil.ErrInvalidArgument)
	}
	// A sha256 digest of 64 hex digits, nothing else.
	h, err := v1.NewHash(d)
	if err != nil {
		return Identifier{}, fmt.Errorf("%w: %w", err, imgutil.ErrInvalidArgument)
	}
	if h.Algorithm != "sha256" {
		return Identifier{}, fmt.Errorf("unsupported hash: %q: %w", h.Algorithm, imgutil.ErrInvalidArgument)
	}
	return Identifier{Path: p, Digest: d}, nil
}

// ParseRefToPath turns an image reference into a relative layout path:
// registry/repository/tag, or registry/repository/sha256/hex for a digest.
func ParseRefToPath(imageRef string) (string, error) {
	ref, err := name.ParseReference(imageRef, name.WeakValidation)
	if err != nil {
		return "", fmt.Errorf("parsing reference %q: %w: %w", imageRef, imgutil.ErrInvalidArgument, err)
	}
	p := filepath.Join(ref.Context().RegistryStr(), ref.Context().RepositoryStr())
	if d, ok := ref.(name.Digest); ok {
		algorithm, hex, _ := strings.Cut(d.DigestStr(), ":")
		return filepath.Join(p, algorithm, hex), nil
	}
	if id := ref.Identifier(); id != "" {
		p = filepath.Join(p, id)
	}
	return p, nil
}

// ImageRefAnnotation returns the annotations naming an image refName in a
// layout index, or nil for an empty name.
func ImageRefAnnotation(imageRefName string) map[string]string {
	if imageRefName == "" {
		return nil
	}
	return map[string]string{ImageRefNameKey: imageRefName}
}
