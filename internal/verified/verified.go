// Package verified remembers files whose content was hashed to a digest,
// keyed by what stat says of them, so that a file checked once (a layout
// blob written or exported, a layer file) is not hashed again while it
// stays as it was.
//
// The key is the file's device, inode, size, and modification and change
// times, to the nanosecond: writing to the file, or replacing it, changes
// one of them (the change time cannot be set back by a user), and the
// record no longer applies. A Records value (owned by the image or Store
// that reads or writes the files) keeps them in memory and, unless
// IMGUTIL_VERIFIED_CACHE was "off" when it was made, as empty files named
// by key and digest under the user cache directory (or the directory it
// names), so that another process on the machine trusts them too.
package verified

import (
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// CacheEnv names the environment variable that sets where records are
// kept across processes ("off": in memory only). Default: the user cache
// directory.
const CacheEnv = "IMGUTIL_VERIFIED_CACHE"

// Records are records of files found to have a digest. A nil *Records
// records nothing. It is safe for concurrent use.
type Records struct {
	dir string // "" for memory only

	// mu guards mem.
	mu  sync.Mutex
	mem map[string]bool
}

// New returns records kept in memory and, when dir is not empty, in dir.
func New(dir string) *Records { return &Records{dir: dir, mem: map[string]bool{}} }

// FromEnv returns records kept where IMGUTIL_VERIFIED_CACHE says now.
func FromEnv() *Records {
	switch d := os.Getenv(CacheEnv); d {
	case "off":
		return New("")
	case "":
		base, err := os.UserCacheDir()
		if err != nil {
			return New("")
		}
		return New(filepath.Join(base, "imgutil", "verified"))
	default:
		return New(d)
	}
}

// Known reports whether the file fi (as stat sees it now) was found to
// have digest d, and has not changed since.
func (r *Records) Known(fi os.FileInfo, d v1.Hash) bool {
	n := name(fi, d)
	if r == nil || n == "" {
		return false
	}
	r.mu.Lock()
	ok := r.mem[n]
	r.mu.Unlock()
	if ok {
		return true
	}
	if r.dir != "" {
		if _, err := os.Lstat(filepath.Join(r.dir, n[:2], n)); err == nil {
			r.mu.Lock()
			r.mem[n] = true
			r.mu.Unlock()
			return true
		}
	}
	return false
}

// Remember records that the file fi was found to have digest d. fi must
// be what stat said of the file before it was read: a change during the
// read then leaves a record of nothing.
func (r *Records) Remember(fi os.FileInfo, d v1.Hash) {
	n := name(fi, d)
	if r == nil || n == "" {
		return
	}
	r.mu.Lock()
	r.mem[n] = true
	r.mu.Unlock()
	if r.dir != "" {
		sub := filepath.Join(r.dir, n[:2])
		if os.MkdirAll(sub, 0o755) == nil {
			if f, err := os.OpenFile(filepath.Join(sub, n), os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				f.Close()
			}
		}
	}
}
