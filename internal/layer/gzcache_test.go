package layer

import (
	"path/filepath"
	"strings"
	"testing"
)

// The cache's directory names the compressor by what it makes of a fixed
// sample: the same in every process of a build (so sums are shared), not
// a module version that test binaries lack.
func TestCompressorName(t *testing.T) {
	a, b := compressor(), compressor()
	if a != b || !strings.HasPrefix(a, "klauspost-gzip-") || len(a) != len("klauspost-gzip-")+16 {
		t.Fatalf("compressor() = %q then %q", a, b)
	}
	t.Setenv(GzipCacheEnv, t.TempDir())
	if s := SumsFromEnv(); filepath.Base(s.dir) != a {
		t.Fatalf("sums kept in %s, want a directory named %s", s.dir, a)
	}
}
