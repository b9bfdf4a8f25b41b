package layer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imgbridge/imgutil/internal/userfile"
	"github.com/imgbridge/imgutil/internal/verified"
)

// GzipCacheEnv names the environment variable that sets where the digests
// of compressed layers are kept across processes ("off": in memory only).
// Default: the user cache directory.
const GzipCacheEnv = "IMGUTIL_LAYER_CACHE"

// compressor names the compressor whose output the cache describes (see
// CompressorID): another compressor (another version of
// klauspost/compress, a fork put in by a replace directive, another level)
// makes other bytes, so its sums go elsewhere: two programs sharing the
// cache directory never take each other's sums.
var compressor = sync.OnceValue(func() string {
	return CompressorID("klauspost-gzip", func(w io.Writer, r io.Reader) error {
		zr := Gzip(io.NopCloser(r))
		_, err := io.Copy(w, zr)
		_ = zr.Close()
		return err
	})
})

// GzipCompressor names Gzip's compressor as CompressorID does ("": it
// could not be named).
func GzipCompressor() string { return compressor() }

// CompressorID names a compressor by what it makes of a fixed sample:
// name, then the start of the output's digest ("" when compress fails). A
// module version would not do: test binaries and some builds carry none.
func CompressorID(name string, compress func(w io.Writer, r io.Reader) error) string {
	rng := rand.New(rand.NewPCG(1, 2))
	var sample bytes.Buffer
	words := []string{"layer ", "image ", "buildpack ", "/workspace/", "\n", "0123 "}
	for sample.Len() < 256<<10 {
		if rng.IntN(4) == 0 {
			var b [64]byte
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			sample.Write(b[:])
			continue
		}
		sample.WriteString(words[rng.IntN(len(words))])
	}
	h := sha256.New()
	if err := compress(h, &sample); err != nil {
		return ""
	}
	return name + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// Sums map a layer's diffID to the digest and size of its compressed
// form (a pure function of the content for a fixed compressor), so that a
// layer added again in a later build (the lifecycle re-adds unchanged
// layers) is known to the registry without being compressed or sent. A
// nil *Sums keeps nothing. It is safe for concurrent use.
type Sums struct {
	dir string

	// mu guards mem.
	mu  sync.Mutex
	mem map[v1.Hash]gzipSum
}

type gzipSum struct {
	digest v1.Hash
	size   int64
}

// Caches are what an image or a Store keeps of the layers and files it
// met: compressed sums by diffID, files found to have a digest. Made once
// by their owner (CachesFromEnv), they are handed to the layers it makes;
// zero Caches keep nothing.
type Caches struct {
	Sums     *Sums
	Verified *verified.Records
}

// CachesFromEnv returns caches kept where IMGUTIL_LAYER_CACHE and
// IMGUTIL_VERIFIED_CACHE say now.
func CachesFromEnv() Caches {
	return Caches{Sums: SumsFromEnv(), Verified: verified.FromEnv()}
}

// SumsFromEnv returns sums kept in memory and where IMGUTIL_LAYER_CACHE
// says now (default: the user cache directory; "off": memory only).
func SumsFromEnv() *Sums {
	c := &Sums{mem: map[v1.Hash]gzipSum{}}
	switch dir := os.Getenv(GzipCacheEnv); {
	case dir == "off" || compressor() == "":
	case dir == "":
		if base, err := os.UserCacheDir(); err == nil {
			c.dir = filepath.Join(base, "imgutil", compressor())
		}
	default:
		c.dir = filepath.Join(dir, compressor())
	}
	return c
}

// Get returns the digest and size of the gzip form (Gzip's) of the layer
// diffID, when known.
func (c *Sums) Get(diffID v1.Hash) (v1.Hash, int64, bool) {
	s, ok := c.get(diffID)
	return s.digest, s.size, ok
}

// Put records the digest and size of the gzip form (Gzip's) of the layer
// diffID, learnt from the bytes themselves.
func (c *Sums) Put(diffID, digest v1.Hash, size int64) {
	c.put(diffID, gzipSum{digest: digest, size: size})
}

func (c *Sums) get(diffID v1.Hash) (gzipSum, bool) {
	if c == nil {
		return gzipSum{}, false
	}
	c.mu.Lock()
	s, ok := c.mem[diffID]
	c.mu.Unlock()
	if ok || c.dir == "" {
		return s, ok
	}
	b, err := os.ReadFile(filepath.Join(c.dir, diffID.Hex))
	if err != nil {
		return gzipSum{}, false
	}
	var d string
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%s %d", &d, &s.size); err != nil {
		return gzipSum{}, false
	}
	if s.digest, err = v1.NewHash(d); err != nil || s.size <= 0 {
		return gzipSum{}, false
	}
	c.mu.Lock()
	c.mem[diffID] = s
	c.mu.Unlock()
	return s, true
}

// put records a sum learnt from the bytes themselves. Disk errors only
// cost a later compression.
func (c *Sums) put(diffID v1.Hash, s gzipSum) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.mem[diffID] = s
	c.mu.Unlock()
	if c.dir == "" || os.MkdirAll(c.dir, 0o755) != nil {
		return
	}
	f, err := os.CreateTemp(c.dir, ".entry-*")
	if err != nil {
		return
	}
	_, err = fmt.Fprintf(f, "%s %d\n", s.digest, s.size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || userfile.Place(f.Name(), filepath.Join(c.dir, diffID.Hex)) != nil {
		os.Remove(f.Name())
	}
}

// FileSHA256 is the sha256 digest of the file at path: a plain tar's
// diffID.
func FileSHA256(path string) (v1.Hash, error) {
	f, err := os.Open(path)
	if err != nil {
		return v1.Hash{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}
