package compat_test

// The names build tools import besides the backends (shared/CLIENTS.md),
// each assigned to a variable of its declared type: a signature that
// drifts fails to compile.

import (
	"archive/tar"
	"io"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/fakes"
	"github.com/imgbridge/imgutil/layer"
)

var (
	_ imgutil.Image      = &fakes.Image{}
	_ imgutil.ImageIndex = fakes.ImageIndex{}
	_                    = fakes.ImageIndex{Manifests: []v1.Descriptor{}}
	_ io.Writer          = (*layer.WindowsWriter)(nil)
)

func init() {
	var _ func(*fakes.Image, string) error = (*fakes.Image).AddLayer
	var _ func(*fakes.Image, string, string) error = (*fakes.Image).AddLayerWithDiffID
	var _ func(*fakes.Image, string, string, v1.History) error = (*fakes.Image).AddLayerWithDiffIDAndHistory
	var _ func(*fakes.Image, string, string, v1.History) error = (*fakes.Image).AddOrReuseLayerWithHistory
	var _ func(*fakes.Image, string, string) = (*fakes.Image).AddPreviousLayer
	var _ func(*fakes.Image, string) error = (*fakes.Image).AnnotateRefName
	var _ func(*fakes.Image) (map[string]string, error) = (*fakes.Image).Annotations
	var _ func(*fakes.Image) string = (*fakes.Image).AppLayerPath
	var _ func(*fakes.Image) (string, error) = (*fakes.Image).Architecture
	var _ func(*fakes.Image) string = (*fakes.Image).Base
	var _ func(*fakes.Image) error = (*fakes.Image).Cleanup
	var _ func(*fakes.Image) ([]string, error) = (*fakes.Image).Cmd
	var _ func(*fakes.Image) string = (*fakes.Image).ConfigLayerPath
	var _ func(*fakes.Image) (time.Time, error) = (*fakes.Image).CreatedAt
	var _ func(*fakes.Image) error = (*fakes.Image).Delete
	var _ func(*fakes.Image) (v1.Hash, error) = (*fakes.Image).Digest
	var _ func(*fakes.Image) ([]string, error) = (*fakes.Image).Entrypoint
	var _ func(*fakes.Image, string) (string, error) = (*fakes.Image).Env
	var _ func(*fakes.Image) ([]string, error) = (*fakes.Image).Features
	var _ func(*fakes.Image, string) (string, error) = (*fakes.Image).FindLayerWithPath
	var _ func(*fakes.Image) bool = (*fakes.Image).Found
	var _ func(*fakes.Image) (string, error) = (*fakes.Image).GetAnnotateRefName
	var _ func(*fakes.Image, string) (io.ReadCloser, error) = (*fakes.Image).GetLayer
	var _ func(*fakes.Image) ([]v1.History, error) = (*fakes.Image).History
	var _ func(*fakes.Image) (imgutil.Identifier, error) = (*fakes.Image).Identifier
	var _ func(*fakes.Image) bool = (*fakes.Image).IsSaved
	var _ func(*fakes.Image) string = (*fakes.Image).Kind
	var _ func(*fakes.Image, string) (string, error) = (*fakes.Image).Label
	var _ func(*fakes.Image) (map[string]string, error) = (*fakes.Image).Labels
	var _ func(*fakes.Image) (int64, error) = (*fakes.Image).ManifestSize
	var _ func(*fakes.Image) (types.MediaType, error) = (*fakes.Image).MediaType
	var _ func(*fakes.Image) string = (*fakes.Image).Name
	var _ func(*fakes.Image) int = (*fakes.Image).NumberOfAddedLayers
	var _ func(*fakes.Image) (string, error) = (*fakes.Image).OS
	var _ func(*fakes.Image) ([]string, error) = (*fakes.Image).OSFeatures
	var _ func(*fakes.Image) (string, error) = (*fakes.Image).OSVersion
	var _ func(*fakes.Image, string, imgutil.Image) error = (*fakes.Image).Rebase
	var _ func(*fakes.Image, string) error = (*fakes.Image).RemoveLabel
	var _ func(*fakes.Image, string) = (*fakes.Image).Rename
	var _ func(*fakes.Image, string) error = (*fakes.Image).ReuseLayer
	var _ func(*fakes.Image, string, v1.History) error = (*fakes.Image).ReuseLayerWithHistory
	var _ func(*fakes.Image) []string = (*fakes.Image).ReusedLayers
	var _ func(*fakes.Image, ...string) error = (*fakes.Image).Save
	var _ func(*fakes.Image, string, ...string) error = (*fakes.Image).SaveAs
	var _ func(*fakes.Image) (string, error) = (*fakes.Image).SaveFile
	var _ func(*fakes.Image) map[string]string = (*fakes.Image).SavedAnnotations
	var _ func(*fakes.Image) []string = (*fakes.Image).SavedNames
	var _ func(*fakes.Image, map[string]string) error = (*fakes.Image).SetAnnotations
	var _ func(*fakes.Image, string) error = (*fakes.Image).SetArchitecture
	var _ func(*fakes.Image, ...string) error = (*fakes.Image).SetCmd
	var _ func(*fakes.Image, time.Time) error = (*fakes.Image).SetCreatedAt
	var _ func(*fakes.Image, ...string) error = (*fakes.Image).SetEntrypoint
	var _ func(*fakes.Image, string, string) error = (*fakes.Image).SetEnv
	var _ func(*fakes.Image, []string) error = (*fakes.Image).SetFeatures
	var _ func(*fakes.Image, []v1.History) error = (*fakes.Image).SetHistory
	var _ func(*fakes.Image, imgutil.Identifier) = (*fakes.Image).SetIdentifier
	var _ func(*fakes.Image, string, string) error = (*fakes.Image).SetLabel
	var _ func(*fakes.Image, int64) = (*fakes.Image).SetManifestSize
	var _ func(*fakes.Image, string) error = (*fakes.Image).SetOS
	var _ func(*fakes.Image, []string) error = (*fakes.Image).SetOSFeatures
	var _ func(*fakes.Image, string) error = (*fakes.Image).SetOSVersion
	var _ func(*fakes.Image, string) error = (*fakes.Image).SetVariant
	var _ func(*fakes.Image, string) error = (*fakes.Image).SetWorkingDir
	var _ func(*fakes.Image) (string, error) = (*fakes.Image).TopLayer
	var _ func(*fakes.Image) v1.Image = (*fakes.Image).UnderlyingImage
	var _ func(*fakes.Image) bool = (*fakes.Image).Valid
	var _ func(*fakes.Image) (string, error) = (*fakes.Image).Variant
	var _ func(*fakes.Image) (string, error) = (*fakes.Image).WorkingDir
	var _ func(fakes.ImageIndex, v1.Image) = fakes.ImageIndex.AddManifest
	var _ func(fakes.ImageIndex, name.Digest) (map[string]string, error) = fakes.ImageIndex.Annotations
	var _ func(fakes.ImageIndex, name.Digest) (string, error) = fakes.ImageIndex.Architecture
	var _ func(fakes.ImageIndex) error = fakes.ImageIndex.DeleteDir
	var _ func(fakes.ImageIndex) (*v1.IndexManifest, error) = fakes.ImageIndex.IndexManifest
	var _ func(fakes.ImageIndex) (string, error) = fakes.ImageIndex.Inspect
	var _ func(fakes.ImageIndex, name.Digest) (string, error) = fakes.ImageIndex.OS
	var _ func(fakes.ImageIndex, name.Digest) ([]string, error) = fakes.ImageIndex.OSFeatures
	var _ func(fakes.ImageIndex, name.Digest) (string, error) = fakes.ImageIndex.OSVersion
	var _ func(fakes.ImageIndex, ...imgutil.IndexOption) error = fakes.ImageIndex.Push
	var _ func(fakes.ImageIndex, name.Digest) error = fakes.ImageIndex.RemoveManifest
	var _ func(fakes.ImageIndex) error = fakes.ImageIndex.SaveDir
	var _ func(fakes.ImageIndex, name.Digest, map[string]string) error = fakes.ImageIndex.SetAnnotations
	var _ func(fakes.ImageIndex, name.Digest, string) error = fakes.ImageIndex.SetArchitecture
	var _ func(fakes.ImageIndex, name.Digest, string) error = fakes.ImageIndex.SetOS
	var _ func(fakes.ImageIndex, name.Digest, string) error = fakes.ImageIndex.SetVariant
	var _ func(fakes.ImageIndex, name.Digest) (string, error) = fakes.ImageIndex.Variant
	var _ func(string, string, imgutil.Identifier) *fakes.Image = fakes.NewImage
	var _ string = layer.AdministratratorOwnerAndGroupSID
	var _ string = layer.UserOwnerAndGroupSID
	var _ func(*layer.WindowsWriter) error = (*layer.WindowsWriter).Close
	var _ func(*layer.WindowsWriter) error = (*layer.WindowsWriter).Flush
	var _ func(*layer.WindowsWriter, []byte) (int, error) = (*layer.WindowsWriter).Write
	var _ func(*layer.WindowsWriter, *tar.Header) error = (*layer.WindowsWriter).WriteHeader
	var _ func() ([]byte, error) = layer.BaseLayerBCD
	var _ func(io.Writer) *layer.WindowsWriter = layer.NewWindowsWriter
	var _ func() (io.Reader, error) = layer.WindowsBaseLayer
	_ = tar.Header{}
	_ = time.Time{}
	_ = name.Digest{}
	_ = types.MediaType("")
}
