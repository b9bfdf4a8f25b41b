package remote

import (
	"context"
	"fmt"
	"runtime"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imgbridge/imgutil"
)

// access is how to reach registries: credentials and per-registry settings.
type access struct {
	keychain authn.Keychain
	settings map[string]imgutil.RegistrySetting
}

func newAccess(keychain authn.Keychain, settings map[string]imgutil.RegistrySetting) access {
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	return access{keychain: keychain, settings: settings}
}

// insecure reports whether the registry or repository of s was set insecure.
func (a access) insecure(ref name.Reference) bool {
	for _, key := range []string{ref.Context().RegistryStr(), ref.Context().Name()} {
		if st, ok := a.settings[key]; ok && st.Insecure {
			return true
		}
	}
	return false
}

// ref parses s; an insecure registry may be reached over plain HTTP.
func (a access) ref(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s, name.WeakValidation)
	if err != nil {
		return nil, fmt.Errorf("image name %q: %w: %w", s, imgutil.ErrInvalidArgument, err)
	}
	if a.insecure(ref) {
		ref, err = name.ParseReference(s, name.WeakValidation, name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("image name %q: %w: %w", s, imgutil.ErrInvalidArgument, err)
		}
	}
	return ref, nil
}

// options are the go-containerregistry options to reach ref.
func (a access) options(ctx context.Context, ref name.Reference, platform imgutil.Platform) []remote.Option {
	p := v1.Platform{OS: platform.OS, Architecture: platform.Architecture, Variant: platform.Variant, OSVersion: platform.OSVersion}
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.Architecture == "" {
		p.Architecture = runtime.GOARCH
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(a.keychain),
		remote.WithTransport(imgutil.GetTransport(a.insecure(ref))),
		remote.WithPlatform(p),
	}
}
