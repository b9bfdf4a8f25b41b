package containerd

import "github.com/opencontainers/go-digest"

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }
