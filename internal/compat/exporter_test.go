package compat_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/remote"
	"github.com/imgbridge/imgutil/testhelpers"
)

// export is the exporter's job, written against the imgutil.Image
// interface only, as the lifecycle writes it.
func export(t *testing.T, img imgutil.Image, reuse []string, add map[string]string, tags []string) imgutil.Identifier {
	t.Helper()
	for _, diffID := range reuse {
		if err := img.ReuseLayerWithHistory(diffID, v1.History{CreatedBy: "Buildpack: reused"}); err != nil {
			t.Fatalf("ReuseLayerWithHistory: %v", err)
		}
	}
	for path, diffID := range add {
		if err := img.AddLayerWithDiffIDAndHistory(path, diffID, v1.History{CreatedBy: "Buildpack: new"}); err != nil {
			t.Fatalf("AddLayerWithDiffIDAndHistory: %v", err)
		}
	}
	if err := img.SetLabel("io.buildpacks.lifecycle.metadata", `{"app":[]}`); err != nil {
		t.Fatal(err)
	}
	if err := img.SetEnv("CNB_APP_DIR", "/workspace"); err != nil {
		t.Fatal(err)
	}
	if err := img.SetEntrypoint("/cnb/process/web"); err != nil {
		t.Fatal(err)
	}
	if err := img.SaveAs(img.Name(), tags...); err != nil {
		var saveErr imgutil.SaveError
		if errors.As(err, &saveErr) {
			for _, d := range saveErr.Errors {
				t.Errorf("failed to save %s: %v", d.ImageName, d.Cause)
			}
		}
		t.Fatalf("SaveAs: %v", err)
	}
	id, err := img.Identifier()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// describe type-switches on the identifier, as pack and the lifecycle do.
func describe(t *testing.T, id imgutil.Identifier) string {
	switch v := id.(type) {
	case local.IDIdentifier:
		return "daemon image " + v.ImageID
	case remote.DigestIdentifier:
		return "registry image " + v.Digest.DigestStr()
	default:
		t.Fatalf("unexpected identifier type %T", id)
		return ""
	}
}

func TestExporterAgainstDaemon(t *testing.T) {
	testhelpers.ForEachDaemon(t, func(t *testing.T, cli *client.Client) {
		base := "imgutil-compat/run:" + strings.ToLower(fmt.Sprint(time.Now().UnixNano()))
		testhelpers.DockerPut(t, cli, base, testhelpers.BusyboxImage(t, imgutil.DockerTypes))
		app := "imgutil-compat/app:" + strings.ToLower(fmt.Sprint(time.Now().UnixNano()))
		testhelpers.DockerCleanup(t, cli, app)
		testhelpers.DockerCleanup(t, cli, app+"-extra")
		p, diffID := testhelpers.LayerFile(t, map[string]string{"workspace/app": "v1"})

		opts := []imgutil.ImageOption{
			local.FromBaseImage(base), local.WithPreviousImage(app), local.WithHistory(),
			local.WithCreatedAt(imgutil.NormalizedDateTime),
			local.WithDefaultPlatform(imgutil.Platform{OS: "linux"}),
		}
		// Each export is a process of its own on one connection, as the
		// lifecycle's exporter is.
		first, err := local.NewImage(app, testhelpers.NewSingleConnClient(t, cli), opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer first.Close()
		t.Log(describe(t, export(t, first, nil, map[string]string{p: diffID}, nil)))

		second, err := local.NewImage(app, testhelpers.NewSingleConnClient(t, cli), opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer second.Close()
		p2, diffID2 := testhelpers.LayerFile(t, map[string]string{"workspace/app": "v2"})
		id := export(t, second, []string{diffID}, map[string]string{p2: diffID2}, []string{app + "-extra"})
		t.Log(describe(t, id))
		testhelpers.CheckImage(t, testhelpers.DockerRead(t, cli, app))
		if _, err := second.GetLayer(diffID); err != nil {
			t.Fatalf("GetLayer of a reused layer: %v", err)
		}
	})
}

func TestExporterAgainstRegistry(t *testing.T) {
	reg := testhelpers.StartRegistry(t, testhelpers.WithBasicAuth("cnb", "cnb-pass"))
	base := reg.Put(t, "compat/run:latest", testhelpers.BusyboxImage(t, imgutil.OCITypes))
	app := reg.Repo("compat/app:latest")
	p, diffID := testhelpers.LayerFile(t, map[string]string{"workspace/app": "v1"})
	kc := reg.Keychain()

	opts := []imgutil.ImageOption{
		remote.FromBaseImage(base), remote.WithPreviousImage(app), remote.WithHistory(),
		remote.WithCreatedAt(imgutil.NormalizedDateTime),
		remote.WithDefaultPlatform(imgutil.Platform{OS: "linux"}),
	}
	first, err := remote.NewImage(app, kc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(describe(t, export(t, first, nil, map[string]string{p: diffID}, nil)))
	second, err := remote.NewImage(app, kc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	p2, diffID2 := testhelpers.LayerFile(t, map[string]string{"workspace/app": "v2"})
	t.Log(describe(t, export(t, second, []string{diffID}, map[string]string{p2: diffID2}, []string{reg.Repo("compat/app:v2")})))
	testhelpers.CheckImage(t, reg.Get(t, "compat/app:v2"))
}
