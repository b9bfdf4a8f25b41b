package local

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/archive"
)

// classicArchive is a classic store's archive of an image of the layers
// given (their content as is): its bytes, ID and diffIDs.
func classicArchive(t *testing.T, layers ...[]byte) ([]byte, string, []v1.Hash) {
	t.Helper()
	var diffIDs []v1.Hash
	var names []string
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	put := func(name string, data []byte) { putFile(t, tw, name, data) }
	for _, l := range layers {
		sum := sha256.Sum256(l)
		h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
		diffIDs = append(diffIDs, h)
		names = append(names, "blobs/sha256/"+h.Hex)
		put(names[len(names)-1], l)
	}
	cfg, err := json.Marshal(v1.ConfigFile{OS: "linux", RootFS: v1.RootFS{Type: "layers", DiffIDs: diffIDs}})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cfg)
	cfgName := "blobs/sha256/" + hex.EncodeToString(sum[:])
	put(cfgName, cfg)
	mf, err := json.Marshal([]archive.DockerManifest{{Config: cfgName, Layers: names, RepoTags: []string{"x/y:z"}}})
	if err != nil {
		t.Fatal(err)
	}
	put("manifest.json", mf)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), "sha256:" + hex.EncodeToString(sum[:]), diffIDs
}

// putFile writes a regular entry name holding data to tw.
func putFile(t *testing.T, tw *tar.Writer, name string, data []byte) {
	t.Helper()
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// oddChunks hands raw to a chunkReader in chunks of uneven sizes, so that
// entries and headers straddle them.
func oddChunks(raw []byte) *chunkReader {
	ch := make(chan []byte, len(raw)/1000+2)
	for len(raw) > 0 {
		n := min(len(raw), 1+len(raw)%777_777)
		ch <- raw[:n]
		raw = raw[n:]
	}
	close(ch)
	return &chunkReader{chunks: ch, free: make(chan []byte, 1)}
}

// The check of large entries hashes them straight from the chunks (as tar
// skips them): it finds what the copying check finds, on every path.
func TestArchiveCheckLargeEntries(t *testing.T) {
	big1 := randomBytes(maxMetadataSize+12345, 1)
	big2 := randomBytes(3*maxMetadataSize+1, 2)
	small := randomBytes(1000, 3)
	raw, id, diffIDs := classicArchive(t, big1, small, big2)

	check := func(r io.Reader, id string, diffIDs []v1.Hash) error {
		return (&archiveChecker{id: id, diffIDs: diffIDs}).check(r)
	}
	for name, r := range map[string]func([]byte) io.Reader{
		"copying":     func(b []byte) io.Reader { return bytes.NewReader(b) },
		"from-chunks": func(b []byte) io.Reader { return oddChunks(b) },
	} {
		t.Run(name, func(t *testing.T) {
			if err := check(r(raw), id, diffIDs); err != nil {
				t.Fatalf("a good archive: %v", err)
			}
			wrong := append([]v1.Hash{}, diffIDs...)
			wrong[2] = diffIDs[0]
			if err := check(r(raw), id, wrong); !errors.Is(err, imgutil.ErrDiffIDMismatch) {
				t.Fatalf("a layer that is not the image's: %v", err)
			}
			flipped := bytes.Clone(raw)
			at := bytes.Index(flipped, big2[:64]) + len(big2) - 1
			flipped[at] ^= 1
			if err := check(r(flipped), id, diffIDs); !errors.Is(err, errBadArchive) {
				t.Fatalf("a blob whose last byte changed: %v", err)
			}
			for _, cut := range []int{bytes.Index(raw, big1[:64]) + 100, bytes.Index(raw, big2[:64]) + len(big2) - 1, len(raw) / 2} {
				if err := check(r(raw[:cut]), id, diffIDs); !errors.Is(err, errBadArchive) {
					t.Fatalf("an archive cut at %d: %v", cut, err)
				}
			}
		})
	}
}

// A checked copy writes every byte, whatever the check finds, and gives
// the check's verdict.
func TestCheckedCopy(t *testing.T) {
	raw, id, diffIDs := classicArchive(t, randomBytes(maxMetadataSize+1, 4), randomBytes(7<<20, 5))
	var out bytes.Buffer
	if err := checkedCopy(&out, bytes.NewReader(raw), &archiveChecker{id: id, diffIDs: diffIDs}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), raw) {
		t.Fatal("the copy differs from the archive")
	}
	out.Reset()
	err := checkedCopy(&out, bytes.NewReader(raw), &archiveChecker{id: id, diffIDs: diffIDs[:1]})
	if !errors.Is(err, errBadArchive) || out.Len() != len(raw) {
		t.Fatalf("got %v after %d of %d bytes", err, out.Len(), len(raw))
	}
}

// A sparse entry (PAX GNU.sparse records: fewer bytes stored than its
// size) is refused.
func TestArchiveCheckSparse(t *testing.T) {
	data := randomBytes(maxMetadataSize+10, 6)
	real := 3 * len(data)
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	// The extended header, written as a regular entry and retyped: Go's
	// writer writes no GNU.sparse record.
	var recs bytes.Buffer
	for _, kv := range [][2]string{{"GNU.sparse.map", "0," + strconv.Itoa(len(data))}, {"GNU.sparse.numblocks", "1"}, {"GNU.sparse.size", strconv.Itoa(real)}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 2
		if len(strconv.Itoa(n)+rec) != n {
			n++
		}
		recs.WriteString(strconv.Itoa(n) + rec)
	}
	for _, e := range []struct {
		name string
		data []byte
	}{{"PaxHeaders/x", recs.Bytes()}, {"blobs/sha256/x", data}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Size: int64(len(e.data)), Format: tar.FormatUSTAR}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	raw := out.Bytes()
	raw[156] = tar.TypeXHeader
	sum := 0
	for i, c := range raw[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int(c)
	}
	copy(raw[148:156], fmt.Sprintf("%06o\x00 ", sum))
	hdr, err := tar.NewReader(bytes.NewReader(raw)).Next()
	if err != nil || hdr.Size != int64(real) || hdr.Typeflag != tar.TypeReg {
		t.Fatalf("the test's sparse entry reads as %+v, %v", hdr, err)
	}
	for _, r := range []io.Reader{bytes.NewReader(raw), oddChunks(raw)} {
		err := (&archiveChecker{id: "sha256:00"}).check(r)
		if !errors.Is(err, errBadArchive) || !strings.Contains(err.Error(), "sparse") {
			t.Fatalf("a sparse entry: %v", err)
		}
	}
}

// In a containerd store's archive (the ID is the manifest's digest), a
// layer blob that is a link is followed: a link named by one digest to
// content of another does not pass.
func TestArchiveCheckLinkedBlob(t *testing.T) {
	a, b := randomBytes(3000, 7), randomBytes(3000, 8)
	digestOf := func(data []byte) v1.Hash {
		sum := sha256.Sum256(data)
		return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	}
	da, db := digestOf(a), digestOf(b)
	cfg := []byte(`{"os":"linux","rootfs":{"type":"layers","diff_ids":["` + da.String() + `","` + db.String() + `"]}}`)
	dc := digestOf(cfg)
	m, err := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Config: v1.Descriptor{Digest: dc, Size: int64(len(cfg))},
		Layers: []v1.Descriptor{{Digest: da, Size: int64(len(a))}, {Digest: db, Size: int64(len(b))}}})
	if err != nil {
		t.Fatal(err)
	}
	id := digestOf(m).String()
	build := func(linkB bool) []byte {
		var out bytes.Buffer
		tw := tar.NewWriter(&out)
		put := func(name string, data []byte) { putFile(t, tw, name, data) }
		put("blobs/sha256/"+da.Hex, a)
		if linkB {
			if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + db.Hex, Typeflag: tar.TypeSymlink, Linkname: da.Hex}); err != nil {
				t.Fatal(err)
			}
		} else {
			put("blobs/sha256/"+db.Hex, b)
		}
		put("blobs/sha256/"+dc.Hex, cfg)
		put("blobs/sha256/"+digestOf(m).Hex, m)
		mf, err := json.Marshal([]archive.DockerManifest{{Config: "blobs/sha256/" + dc.Hex, Layers: []string{"blobs/sha256/" + da.Hex, "blobs/sha256/" + db.Hex}}})
		if err != nil {
			t.Fatal(err)
		}
		put("manifest.json", mf)
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	if err := (&archiveChecker{id: id}).check(bytes.NewReader(build(false))); err != nil {
		t.Fatalf("the archive as the store writes it: %v", err)
	}
	if err := (&archiveChecker{id: id}).check(bytes.NewReader(build(true))); !errors.Is(err, errBadArchive) {
		t.Fatalf("a layer blob linked to another's content: %v", err)
	}
}
