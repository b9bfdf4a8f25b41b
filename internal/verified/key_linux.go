package verified

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// name is the record of fi having digest d: a hash of both, or "" when
// the file system says too little to tell a changed file.
func name(fi os.FileInfo, d v1.Hash) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return ""
	}
	key := fmt.Sprintf("%d:%d:%d:%d.%d:%d.%d:%s", st.Dev, st.Ino, fi.Size(),
		st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec, d)
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
