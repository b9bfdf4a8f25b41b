package testhelpers

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// AssertEq fails the test when actual and expected differ, with a diff.
func AssertEq(t *testing.T, actual, expected interface{}) {
	t.Helper()
	if diff := cmp.Diff(actual, expected); diff != "" {
		t.Fatalf("values differ (-actual +expected):\n%s", diff)
	}
}

// AssertNotEq fails the test when v1 and v2 are equal.
func AssertNotEq(t *testing.T, v1, v2 interface{}) {
	t.Helper()
	if cmp.Diff(v1, v2) == "" {
		t.Fatalf("expected values to differ, both are: %v", v1)
	}
}

// AssertMatch fails the test when actual does not match expected.
func AssertMatch(t *testing.T, actual string, expected *regexp.Regexp) {
	t.Helper()
	if !expected.MatchString(actual) {
		t.Fatalf("%q does not match %q", actual, expected)
	}
}

// AssertContains fails the test when slice lacks one of elements.
func AssertContains(t *testing.T, slice []string, elements ...string) {
	t.Helper()
	for _, e := range elements {
		if !slices.Contains(slice, e) {
			t.Fatalf("%q does not contain %q", slice, e)
		}
	}
}

// AssertDoesNotContain fails the test when slice holds one of elements.
func AssertDoesNotContain(t *testing.T, slice []string, elements ...string) {
	t.Helper()
	for _, e := range elements {
		if slices.Contains(slice, e) {
			t.Fatalf("%q contains %q", slice, e)
		}
	}
}

// isNil reports whether v is nil or a nil pointer, map, slice, func,
// channel or interface.
func isNil(v interface{}) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice:
		return rv.IsNil()
	}
	return false
}

// AssertNil fails the test when actual is not nil (an error: its text).
func AssertNil(t *testing.T, actual interface{}) {
	t.Helper()
	if !isNil(actual) {
		if err, ok := actual.(error); ok {
			t.Fatalf("expected no error, got: %v", err)
		}
		t.Fatalf("expected nil, got: %v", actual)
	}
}

// AssertNotNil fails the test when actual is nil.
func AssertNotNil(t *testing.T, actual any) {
	t.Helper()
	if isNil(actual) {
		t.Fatal("expected a value, got nil")
	}
}

// AssertError fails the test when actual is nil or its text lacks expected.
func AssertError(t *testing.T, actual error, expected string) {
	t.Helper()
	if actual == nil {
		t.Fatalf("expected an error containing %q, got nil", expected)
	}
	if !strings.Contains(actual.Error(), expected) {
		t.Fatalf("expected an error containing %q, got: %v", expected, actual)
	}
}

// AssertTrue fails the test when p reports false.
func AssertTrue(t *testing.T, p func() bool) {
	t.Helper()
	if !p() {
		t.Fatal("expected the condition to hold")
	}
}

// AssertPathExists fails the test when nothing is at path.
func AssertPathExists(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("expected %s to exist: %v", path, err)
	}
}

// AssertPathDoesNotExists fails the test when something is at path.
func AssertPathDoesNotExists(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("expected %s not to exist (%v)", path, err)
	}
}

// AssertBlobsLen fails the test unless the OCI layout at path holds
// expected sha256 blobs.
func AssertBlobsLen(t *testing.T, path string, expected int) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(path, "blobs", "sha256"))
	AssertNil(t, err)
	if len(entries) != expected {
		t.Fatalf("layout %s holds %d blobs, want %d", path, len(entries), expected)
	}
}

// AssertEqAnnotation fails the test unless the descriptor's annotation key
// is value.
func AssertEqAnnotation(t *testing.T, manifest v1.Descriptor, key, value string) {
	t.Helper()
	if got := manifest.Annotations[key]; got != value {
		t.Fatalf("annotation %s = %q, want %q", key, got, value)
	}
}

// AssertOCIMediaTypes fails the test unless the image's manifest, config
// and layers have OCI media types.
func AssertOCIMediaTypes(t *testing.T, image v1.Image) {
	t.Helper()
	assertMediaTypes(t, image, types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer, types.OCIUncompressedLayer)
}

// AssertDockerMediaTypes fails the test unless the image's manifest,
// config and layers have Docker media types.
func AssertDockerMediaTypes(t *testing.T, image v1.Image) {
	t.Helper()
	assertMediaTypes(t, image, types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer, types.DockerUncompressedLayer)
}

func assertMediaTypes(t *testing.T, image v1.Image, manifest, config types.MediaType, layers ...types.MediaType) {
	t.Helper()
	m, err := image.Manifest()
	AssertNil(t, err)
	if m.MediaType != manifest && m.MediaType != "" {
		t.Fatalf("manifest media type %s, want %s", m.MediaType, manifest)
	}
	if m.Config.MediaType != config {
		t.Fatalf("config media type %s, want %s", m.Config.MediaType, config)
	}
	for i, l := range m.Layers {
		if !slices.Contains(layers, l.MediaType) {
			t.Fatalf("layer %d media type %s, want one of %v", i, l.MediaType, layers)
		}
	}
}

// Eventually calls test every interval until it reports true, and fails
// the test when timeout passes first.
func Eventually(t *testing.T, test func() bool, every time.Duration, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !test() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(every)
	}
}

// StringElementAt is elements[offset]; a negative offset counts from the
// end (-1 is the last).
func StringElementAt(elements []string, offset int) string {
	if offset < 0 {
		return elements[len(elements)+offset]
	}
	return elements[offset]
}
