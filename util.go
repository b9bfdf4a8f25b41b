package imgutil

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"regexp"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// StringSet is a set of strings; StringSlice lists them sorted.
type StringSet struct {
	items map[string]struct{}
}

// NewStringSet returns an empty StringSet.
func NewStringSet() *StringSet {
	return &StringSet{items: map[string]struct{}{}}
}

// Add adds str to the set.
func (s *StringSet) Add(str string) {
	if s.items == nil {
		s.items = map[string]struct{}{}
	}
	s.items[str] = struct{}{}
}

// Remove removes str from the set.
func (s *StringSet) Remove(str string) { delete(s.items, str) }

// StringSlice returns the members, sorted.
func (s *StringSet) StringSlice() (slice []string) {
	for k := range s.items {
		slice = append(slice, k)
	}
	sort.Strings(slice)
	return slice
}

var unsafeNameChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]`)

// MakeFileSafeName turns an image reference into a name usable as a file or
// directory name: every character other than letters, digits, '.', '_' and
// '-' becomes '-'.
func MakeFileSafeName(ref string) string {
	return unsafeNameChars.ReplaceAllString(ref, "-")
}

// GetConfigFile returns image's config file, or an error if it has none.
func GetConfigFile(image v1.Image) (*v1.ConfigFile, error) {
	cfg, err := image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("getting config file: %w", err)
	}
	if cfg == nil {
		return nil, fmt.Errorf("image has no config file: %w", ErrInvalidArgument)
	}
	return cfg, nil
}

// GetManifest returns image's manifest, or an error if it has none.
func GetManifest(image v1.Image) (*v1.Manifest, error) {
	m, err := image.Manifest()
	if err != nil {
		return nil, fmt.Errorf("getting manifest: %w", err)
	}
	if m == nil {
		return nil, ErrManifestUndefined
	}
	return m, nil
}

// GetTransport returns an HTTP transport; with insecure it accepts any TLS
// certificate (it never falls back to plain HTTP by itself).
func GetTransport(insecure bool) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if insecure {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by the caller
	}
	return t
}

// NewEmptyDockerIndex returns an empty index with the Docker manifest-list
// media type.
func NewEmptyDockerIndex() v1.ImageIndex {
	return mutate.IndexMediaType(empty.Index, types.DockerManifestList)
}
