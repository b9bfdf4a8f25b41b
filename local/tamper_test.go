package local_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/local"
)

// rewriteTar rebuilds the tar raw with f applied to each entry (its header
// and content), f returning false to drop it.
func rewriteTar(t *testing.T, raw []byte, f func(hdr *tar.Header, data []byte) ([]byte, bool)) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(raw))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		must(t, err)
		data, err := io.ReadAll(tr)
		must(t, err)
		data, keep := f(hdr, data)
		if !keep {
			continue
		}
		hdr.Size = int64(len(data))
		must(t, tw.WriteHeader(hdr))
		_, err = tw.Write(data)
		must(t, err)
	}
	must(t, tw.Close())
	return out.Bytes()
}

// isLayer tells a layer entry from metadata: a tar or gzip stream.
func isLayer(data []byte) bool {
	return len(data) > 2 && (bytes.HasPrefix(data, []byte{0x1f, 0x8b}) || (len(data) > 262 && string(data[257:262]) == "ustar"))
}

// Tampered daemon archives, as a daemon (or something in front of it)
// could serve them.
var tampers = []struct {
	name string
	f    func(t *testing.T, raw []byte) []byte
}{
	{"LayerBytesChanged", func(t *testing.T, raw []byte) []byte {
		return rewriteTar(t, raw, func(hdr *tar.Header, data []byte) ([]byte, bool) {
			if hdr.Typeflag == tar.TypeReg && isLayer(data) {
				data[len(data)/2] ^= 0x55
			}
			return data, true
		})
	}},
	{"ManifestNamesOutside", func(t *testing.T, raw []byte) []byte {
		return rewriteTar(t, raw, func(hdr *tar.Header, data []byte) ([]byte, bool) {
			if hdr.Name == "manifest.json" {
				var m []map[string]any
				must(t, json.Unmarshal(data, &m))
				for _, im := range m {
					if ls, ok := im["Layers"].([]any); ok && len(ls) > 0 {
						ls[0] = "../../etc/passwd"
					}
				}
				b, err := json.Marshal(m)
				must(t, err)
				return b, true
			}
			return data, true
		})
	}},
	{"HugeManifestJSON", func(t *testing.T, raw []byte) []byte {
		return rewriteTar(t, raw, func(hdr *tar.Header, data []byte) ([]byte, bool) {
			if hdr.Name == "manifest.json" {
				return append(data, bytes.Repeat([]byte(" "), 5<<20)...), true
			}
			return data, true
		})
	}},
	{"TruncatedMidEntry", func(_ *testing.T, raw []byte) []byte {
		// Half the archive ends inside the layers that make most of it:
		// the last entry's header promises more than follows.
		return raw[:len(raw)/2]
	}},
}

// testTamperedDaemonArchives: SaveFile of an image as the daemon holds it
// streams the daemon's own archive, checked as it goes: a tampered one
// leaves no output and no temp file and fails with a matchable error; so
// does a layer read (GetLayer) of a tampered layer.
func testTamperedDaemonArchives(t *testing.T, cli *client.Client) {
	f := newFixture(t, cli)
	for _, tc := range tampers {
		t.Run(tc.name, func(t *testing.T) {
			p := startFaultProxy(t, cli)
			p.tamperSave = tc.f
			img := newImage(t, p.client, f.previous, local.FromBaseImage(f.previous))
			before, _ := filepath.Glob(filepath.Join(os.TempDir(), "*imgutil*"))
			out, err := img.SaveFile()
			if !errors.Is(err, imgutil.ErrInvalidArgument) && !errors.Is(err, imgutil.ErrDiffIDMismatch) {
				t.Errorf("SaveFile of a tampered archive = %q, %v; want ErrInvalidArgument or ErrDiffIDMismatch", out, err)
				os.Remove(out)
			}
			if after, _ := filepath.Glob(filepath.Join(os.TempDir(), "*imgutil*")); len(after) > len(before) {
				t.Errorf("a refused archive left %v (before: %v)", after, before)
			}
			if tc.name == "LayerBytesChanged" {
				img := newImage(t, p.client, f.previous, local.FromBaseImage(f.previous))
				if _, err := img.GetLayer(f.appIDs[0]); !errors.Is(err, imgutil.ErrDiffIDMismatch) {
					t.Errorf("GetLayer of a tampered layer = %v, want ErrDiffIDMismatch", err)
				}
			}
			t.Logf("%s: %v", tc.name, err)
		})
	}
}
