package containerd

import (
	"bytes"
	"io"

	"github.com/opencontainers/go-digest"
)

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
