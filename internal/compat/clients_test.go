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

// sig compiles only when f has exactly the type T.
func sig[T any](T) {}

func init() {
	sig[func(*fakes.Image, string) error]((*fakes.Image).AddLayer)
	sig[func(*fakes.Image, string, string) error]((*fakes.Image).AddLayerWithDiffID)
	sig[func(*fakes.Image, string, string, v1.History) error]((*fakes.Image).AddLayerWithDiffIDAndHistory)
	sig[func(*fakes.Image, string, string, v1.History) error]((*fakes.Image).AddOrReuseLayerWithHistory)
	sig[func(*fakes.Image, string, string)]((*fakes.Image).AddPreviousLayer)
	sig[func(*fakes.Image, string) error]((*fakes.Image).AnnotateRefName)
	sig[func(*fakes.Image) (map[string]string, error)]((*fakes.Image).Annotations)
	sig[func(*fakes.Image) string]((*fakes.Image).AppLayerPath)
	sig[func(*fakes.Image) (string, error)]((*fakes.Image).Architecture)
	sig[func(*fakes.Image) string]((*fakes.Image).Base)
	sig[func(*fakes.Image) error]((*fakes.Image).Cleanup)
	sig[func(*fakes.Image) ([]string, error)]((*fakes.Image).Cmd)
	sig[func(*fakes.Image) string]((*fakes.Image).ConfigLayerPath)
	sig[func(*fakes.Image) (time.Time, error)]((*fakes.Image).CreatedAt)
	sig[func(*fakes.Image) error]((*fakes.Image).Delete)
	sig[func(*fakes.Image) (v1.Hash, error)]((*fakes.Image).Digest)
	sig[func(*fakes.Image) ([]string, error)]((*fakes.Image).Entrypoint)
	sig[func(*fakes.Image, string) (string, error)]((*fakes.Image).Env)
	sig[func(*fakes.Image) ([]string, error)]((*fakes.Image).Features)
	sig[func(*fakes.Image, string) (string, error)]((*fakes.Image).FindLayerWithPath)
	sig[func(*fakes.Image) bool]((*fakes.Image).Found)
	sig[func(*fakes.Image) (string, error)]((*fakes.Image).GetAnnotateRefName)
	sig[func(*fakes.Image, string) (io.ReadCloser, error)]((*fakes.Image).GetLayer)
	sig[func(*fakes.Image) ([]v1.History, error)]((*fakes.Image).History)
	sig[func(*fakes.Image) (imgutil.Identifier, error)]((*fakes.Image).Identifier)
	sig[func(*fakes.Image) bool]((*fakes.Image).IsSaved)
	sig[func(*fakes.Image) string]((*fakes.Image).Kind)
	sig[func(*fakes.Image, string) (string, error)]((*fakes.Image).Label)
	sig[func(*fakes.Image) (map[string]string, error)]((*fakes.Image).Labels)
	sig[func(*fakes.Image) (int64, error)]((*fakes.Image).ManifestSize)
	sig[func(*fakes.Image) (types.MediaType, error)]((*fakes.Image).MediaType)
	sig[func(*fakes.Image) string]((*fakes.Image).Name)
	sig[func(*fakes.Image) int]((*fakes.Image).NumberOfAddedLayers)
	sig[func(*fakes.Image) (string, error)]((*fakes.Image).OS)
	sig[func(*fakes.Image) ([]string, error)]((*fakes.Image).OSFeatures)
	sig[func(*fakes.Image) (string, error)]((*fakes.Image).OSVersion)
	sig[func(*fakes.Image, string, imgutil.Image) error]((*fakes.Image).Rebase)
	sig[func(*fakes.Image, string) error]((*fakes.Image).RemoveLabel)
	sig[func(*fakes.Image, string)]((*fakes.Image).Rename)
	sig[func(*fakes.Image, string) error]((*fakes.Image).ReuseLayer)
	sig[func(*fakes.Image, string, v1.History) error]((*fakes.Image).ReuseLayerWithHistory)
	sig[func(*fakes.Image) []string]((*fakes.Image).ReusedLayers)
	sig[func(*fakes.Image, ...string) error]((*fakes.Image).Save)
	sig[func(*fakes.Image, string, ...string) error]((*fakes.Image).SaveAs)
	sig[func(*fakes.Image) (string, error)]((*fakes.Image).SaveFile)
	sig[func(*fakes.Image) map[string]string]((*fakes.Image).SavedAnnotations)
	sig[func(*fakes.Image) []string]((*fakes.Image).SavedNames)
	sig[func(*fakes.Image, map[string]string) error]((*fakes.Image).SetAnnotations)
	sig[func(*fakes.Image, string) error]((*fakes.Image).SetArchitecture)
	sig[func(*fakes.Image, ...string) error]((*fakes.Image).SetCmd)
	sig[func(*fakes.Image, time.Time) error]((*fakes.Image).SetCreatedAt)
	sig[func(*fakes.Image, ...string) error]((*fakes.Image).SetEntrypoint)
	sig[func(*fakes.Image, string, string) error]((*fakes.Image).SetEnv)
	sig[func(*fakes.Image, []string) error]((*fakes.Image).SetFeatures)
	sig[func(*fakes.Image, []v1.History) error]((*fakes.Image).SetHistory)
	sig[func(*fakes.Image, imgutil.Identifier)]((*fakes.Image).SetIdentifier)
	sig[func(*fakes.Image, string, string) error]((*fakes.Image).SetLabel)
	sig[func(*fakes.Image, int64)]((*fakes.Image).SetManifestSize)
	sig[func(*fakes.Image, string) error]((*fakes.Image).SetOS)
	sig[func(*fakes.Image, []string) error]((*fakes.Image).SetOSFeatures)
	sig[func(*fakes.Image, string) error]((*fakes.Image).SetOSVersion)
	sig[func(*fakes.Image, string) error]((*fakes.Image).SetVariant)
	sig[func(*fakes.Image, string) error]((*fakes.Image).SetWorkingDir)
	sig[func(*fakes.Image) (string, error)]((*fakes.Image).TopLayer)
	sig[func(*fakes.Image) v1.Image]((*fakes.Image).UnderlyingImage)
	sig[func(*fakes.Image) bool]((*fakes.Image).Valid)
	sig[func(*fakes.Image) (string, error)]((*fakes.Image).Variant)
	sig[func(*fakes.Image) (string, error)]((*fakes.Image).WorkingDir)
	sig[func(fakes.ImageIndex, v1.Image)](fakes.ImageIndex.AddManifest)
	sig[func(fakes.ImageIndex, name.Digest) (map[string]string, error)](fakes.ImageIndex.Annotations)
	sig[func(fakes.ImageIndex, name.Digest) (string, error)](fakes.ImageIndex.Architecture)
	sig[func(fakes.ImageIndex) error](fakes.ImageIndex.DeleteDir)
	sig[func(fakes.ImageIndex) (*v1.IndexManifest, error)](fakes.ImageIndex.IndexManifest)
	sig[func(fakes.ImageIndex) (string, error)](fakes.ImageIndex.Inspect)
	sig[func(fakes.ImageIndex, name.Digest) (string, error)](fakes.ImageIndex.OS)
	sig[func(fakes.ImageIndex, name.Digest) ([]string, error)](fakes.ImageIndex.OSFeatures)
	sig[func(fakes.ImageIndex, name.Digest) (string, error)](fakes.ImageIndex.OSVersion)
	sig[func(fakes.ImageIndex, ...imgutil.IndexOption) error](fakes.ImageIndex.Push)
	sig[func(fakes.ImageIndex, name.Digest) error](fakes.ImageIndex.RemoveManifest)
	sig[func(fakes.ImageIndex) error](fakes.ImageIndex.SaveDir)
	sig[func(fakes.ImageIndex, name.Digest, map[string]string) error](fakes.ImageIndex.SetAnnotations)
	sig[func(fakes.ImageIndex, name.Digest, string) error](fakes.ImageIndex.SetArchitecture)
	sig[func(fakes.ImageIndex, name.Digest, string) error](fakes.ImageIndex.SetOS)
	sig[func(fakes.ImageIndex, name.Digest, string) error](fakes.ImageIndex.SetVariant)
	sig[func(fakes.ImageIndex, name.Digest) (string, error)](fakes.ImageIndex.Variant)
	sig[func(string, string, imgutil.Identifier) *fakes.Image](fakes.NewImage)
	sig[string](layer.AdministratratorOwnerAndGroupSID)
	sig[string](layer.UserOwnerAndGroupSID)
	sig[func(*layer.WindowsWriter) error]((*layer.WindowsWriter).Close)
	sig[func(*layer.WindowsWriter) error]((*layer.WindowsWriter).Flush)
	sig[func(*layer.WindowsWriter, []byte) (int, error)]((*layer.WindowsWriter).Write)
	sig[func(*layer.WindowsWriter, *tar.Header) error]((*layer.WindowsWriter).WriteHeader)
	sig[func() ([]byte, error)](layer.BaseLayerBCD)
	sig[func(io.Writer) *layer.WindowsWriter](layer.NewWindowsWriter)
	sig[func() (io.Reader, error)](layer.WindowsBaseLayer)
	_ = tar.Header{}
	_ = time.Time{}
	_ = name.Digest{}
	_ = types.MediaType("")
}
