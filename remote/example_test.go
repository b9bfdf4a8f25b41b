package remote_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/remote"
)

// Build onto a multi-platform base in a registry and push, uploading only
// the blobs the repository lacks; tell "missing" from "not allowed".
func ExampleNewImage() {
	img, err := remote.NewImage("registry.example.com/team/app:latest", authn.DefaultKeychain,
		remote.FromBaseImage("registry.example.com/base:22"),
		remote.WithDefaultPlatform(imgutil.Platform{OS: "linux", Architecture: "arm64"}),
	)
	if err != nil {
		panic(err)
	}
	found, err := img.FoundE(context.Background())
	switch {
	case errors.Is(err, imgutil.ErrUnauthorized):
		fmt.Println("check the credentials")
	case errors.Is(err, remote.ErrRegistryUnreachable):
		fmt.Println("the registry is down")
	case !found:
		fmt.Println("first push of this tag")
	}
	_ = img.AddLayer("/layers/app.tar")
	if err := img.Save("registry.example.com/team/app:1.2.3"); err != nil {
		fmt.Println(err)
	}
	id, _ := img.Identifier()
	fmt.Println(id.(remote.DigestIdentifier).Digest)
}
