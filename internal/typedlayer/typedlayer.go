// Package typedlayer shows a layer under another media type of the same
// compression (a Docker gzip layer as an OCI gzip layer, and back).
package typedlayer

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layer is l with another media type.
type layer struct {
	v1.Layer
	mediaType types.MediaType
}

func (t layer) MediaType() (types.MediaType, error) { return t.mediaType, nil }

// Source is the inner layer's file, when it has one: retyping keeps the
// compression, so the bytes are the same.
func (t layer) Source(compressed bool) (string, v1.Hash, bool) {
	if s, ok := t.Layer.(interface {
		Source(bool) (string, v1.Hash, bool)
	}); ok {
		return s.Source(compressed)
	}
	return "", v1.Hash{}, false
}

// SourceRoot is the inner layer's, when it has one.
func (t layer) SourceRoot() string {
	if r, ok := t.Layer.(interface{ SourceRoot() string }); ok {
		return r.SourceRoot()
	}
	return ""
}

// retyper is a layer that makes its own copy with another media type,
// keeping what it knows (a layer file's memoized digest).
type retyper interface {
	WithMediaType(types.MediaType) v1.Layer
}

// With returns l shown with media type mt; l itself if it already has it.
func With(l v1.Layer, mt types.MediaType) v1.Layer {
	if cur, err := l.MediaType(); err == nil && cur == mt {
		return l
	}
	if t, ok := l.(layer); ok {
		l = t.Layer
	}
	if r, ok := l.(retyper); ok {
		return r.WithMediaType(mt)
	}
	return layer{Layer: l, mediaType: mt}
}
