package local_test

import (
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/local"
)

// A rebuild as a buildpacks exporter does it: start from the run image,
// reuse the unchanged layers of the previous build, add the new one, save
// under two names. Only the new layer travels to the daemon.
func ExampleNewImage() {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		panic(err)
	}
	img, err := local.NewImage("my-app:latest", cli,
		local.FromBaseImage("my-run-image:latest"),
		local.WithPreviousImage("my-app:latest"),
		local.WithHistory(),
		imgutil.WithProgress(func(p imgutil.Progress) { fmt.Println(p.Phase, p.Item, p.Complete, p.Total) }),
	)
	if err != nil {
		panic(err)
	}
	defer img.Close() // removes layers read from the daemon, if any were needed

	if err := img.ReuseLayerWithHistory("sha256:…deps", v1.History{CreatedBy: "deps"}); err != nil {
		var notFound imgutil.ErrLayerNotFound
		if errors.As(err, &notFound) {
			fmt.Println("no previous layer", notFound.DiffID, "- rebuild it")
		}
	}
	_ = img.AddLayerWithDiffIDAndHistory("/layers/app.tar", "sha256:…app", v1.History{CreatedBy: "app"})
	_ = img.SetLabel("io.buildpacks.build.metadata", "{}")
	if err := img.Save("my-app:1.2.3"); err != nil {
		var saveErr imgutil.SaveError
		if errors.As(err, &saveErr) {
			for _, d := range saveErr.Errors {
				fmt.Println("not saved:", d.ImageName, d.Cause)
			}
		}
	}
	id, _ := img.Identifier()
	fmt.Println("image ID", id.(local.IDIdentifier).ImageID)
}
