package imgutil

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil/internal/typedlayer"
)

// MediaTypes selects the family of media types an image is saved with.
type MediaTypes int

const (
	// MissingTypes means no choice was made.
	MissingTypes MediaTypes = iota
	// DefaultTypes keeps the base image's media types.
	DefaultTypes
	// OCITypes uses the OCI image-spec media types.
	OCITypes
	// DockerTypes uses the Docker image manifest v2 schema 2 media types.
	DockerTypes
)

// ManifestType is the manifest media type of t, or "" for DefaultTypes.
func (t MediaTypes) ManifestType() types.MediaType {
	switch t {
	case OCITypes:
		return types.OCIManifestSchema1
	case DockerTypes:
		return types.DockerManifestSchema2
	default:
		return ""
	}
}

// ConfigType is the config media type of t, or "" for DefaultTypes.
func (t MediaTypes) ConfigType() types.MediaType {
	switch t {
	case OCITypes:
		return types.OCIConfigJSON
	case DockerTypes:
		return types.DockerConfigJSON
	default:
		return ""
	}
}

// LayerType is the (gzip) layer media type of t, or "" for DefaultTypes.
func (t MediaTypes) LayerType() types.MediaType {
	switch t {
	case OCITypes:
		return types.OCILayer
	case DockerTypes:
		return types.DockerLayer
	default:
		return ""
	}
}

// GetPreferredMediaTypes returns the media types an image built with options
// gets: the requested ones, else OCI for an image from scratch, else the base
// image's (DefaultTypes).
func GetPreferredMediaTypes(options ImageOptions) MediaTypes {
	if options.MediaTypes != MissingTypes {
		return options.MediaTypes
	}
	if options.BaseImage == nil {
		return OCITypes
	}
	return DefaultTypes
}

// PreserveLayers is the mutateLayer function of EnsureMediaTypesAndLayers that
// keeps every layer as it is.
func PreserveLayers(_ int, layer v1.Layer) (v1.Layer, error) {
	return layer, nil
}

// EnsureMediaTypesAndLayers returns image with requestedTypes (DefaultTypes
// keeps the image's) and each layer passed through mutateLayer. The bool
// reports whether anything changed.
func EnsureMediaTypesAndLayers(image v1.Image, requestedTypes MediaTypes, mutateLayer func(idx int, layer v1.Layer) (v1.Layer, error)) (v1.Image, bool, error) {
	manifestType, err := image.MediaType()
	if err != nil {
		return nil, false, fmt.Errorf("getting image media type: %w", err)
	}
	if requestedTypes == DefaultTypes || requestedTypes == MissingTypes {
		requestedTypes = MediaTypesOf(manifestType)
		if requestedTypes == MissingTypes {
			return nil, false, ErrUnknownMediaType(manifestType)
		}
	}
	cfg, err := GetConfigFile(image)
	if err != nil {
		return nil, false, err
	}
	layers, err := image.Layers()
	if err != nil {
		return nil, false, fmt.Errorf("getting layers: %w", err)
	}
	changed := manifestType != requestedTypes.ManifestType()
	adds := make([]mutate.Addendum, 0, len(layers))
	for idx, l := range layers {
		nl, err := mutateLayer(idx, l)
		if err != nil {
			return nil, false, fmt.Errorf("mutating layer %d: %w", idx, err)
		}
		want, err := ConvertLayerMediaType(nl, requestedTypes)
		if err != nil {
			return nil, false, err
		}
		if nl != l {
			changed = true
		}
		if mt, err := l.MediaType(); err != nil || mt != want {
			changed = true
		}
		adds = append(adds, mutate.Addendum{Layer: typedlayer.With(nl, want), MediaType: want})
	}
	if !changed {
		return image, false, nil
	}
	out := mutate.MediaType(empty.Image, requestedTypes.ManifestType())
	out = mutate.ConfigMediaType(out, requestedTypes.ConfigType())
	if out, err = mutate.Append(out, adds...); err != nil {
		return nil, false, fmt.Errorf("appending layers: %w", err)
	}
	if out, err = mutate.ConfigFile(out, cfg); err != nil {
		return nil, false, fmt.Errorf("setting config: %w", err)
	}
	return out, true, nil
}

// ConvertLayerMediaType returns the media type layer l gets in an image of
// types t: its compression kind is kept, its family follows t.
func ConvertLayerMediaType(l v1.Layer, t MediaTypes) (types.MediaType, error) {
	mt, err := l.MediaType()
	if err != nil {
		return "", fmt.Errorf("getting layer media type: %w", err)
	}
	switch t {
	case DockerTypes:
		switch mt {
		case types.OCILayer, types.DockerLayer:
			return types.DockerLayer, nil
		case types.OCIUncompressedLayer, types.DockerUncompressedLayer:
			return types.DockerUncompressedLayer, nil
		case types.OCIRestrictedLayer, types.DockerForeignLayer:
			return types.DockerForeignLayer, nil
		}
	case OCITypes:
		switch mt {
		case types.OCILayer, types.DockerLayer:
			return types.OCILayer, nil
		case types.OCIUncompressedLayer, types.DockerUncompressedLayer:
			return types.OCIUncompressedLayer, nil
		case types.OCIRestrictedLayer, types.DockerForeignLayer:
			return types.OCIRestrictedLayer, nil
		case types.OCILayerZStd:
			return mt, nil
		}
	default:
		return mt, nil
	}
	return "", ErrUnknownMediaType(mt)
}

// MediaTypesOf returns the family (OCITypes or DockerTypes) of a manifest
// media type, or MissingTypes for any other media type.
func MediaTypesOf(manifestType types.MediaType) MediaTypes {
	switch manifestType {
	case types.OCIManifestSchema1:
		return OCITypes
	case types.DockerManifestSchema2:
		return DockerTypes
	default:
		return MissingTypes
	}
}
