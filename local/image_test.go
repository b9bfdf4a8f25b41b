package local_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"

	"github.com/imgbridge/imgutil"
	"github.com/imgbridge/imgutil/internal/imagetest"
	"github.com/imgbridge/imgutil/local"
	"github.com/imgbridge/imgutil/testhelpers"
)

var _ imagetest.CoreMethods = (*local.Image)(nil)

// freshName returns an image name no test used, removed when the test ends.
func freshName(t testing.TB, cli client.APIClient) string {
	name := "imgutil-test/" + strings.ToLower(rand.Text()[:12]) + ":latest"
	testhelpers.DockerCleanup(t, cli, name)
	return name
}

// newImage opens name through a client that serves one request at a time
// (as the lifecycle's may): every test of the package proves the library
// never overlaps calls on the caller's client.
func newImage(t *testing.T, cli local.DockerClient, name string, ops ...imgutil.ImageOption) *local.Image {
	t.Helper()
	img, err := local.NewImage(name, testhelpers.NewSingleConnClient(t, cli), ops...)
	if err != nil {
		t.Fatalf("NewImage(%s): %v", name, err)
	}
	t.Cleanup(func() {
		if err := img.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return img
}

func harness(t *testing.T, cli *client.Client) imagetest.Harness {
	return imagetest.Harness{
		NewImage: func(t *testing.T, name string, ops ...imgutil.ImageOption) imgutil.Image {
			return newImage(t, cli, name, ops...)
		},
		FreshName: func(t *testing.T) string { return freshName(t, cli) },
		Store: func(t *testing.T, img v1.Image) string {
			name := freshName(t, cli)
			testhelpers.DockerPut(t, cli, name, img)
			return name
		},
		Read: func(t *testing.T, name string) v1.Image {
			return testhelpers.DockerRead(t, cli, name)
		},
		BaseMediaTypes: imgutil.DockerTypes,
	}
}

// TestLocal runs every local test against each daemon the environment
// offers (scripts/dockerd.sh all: Debian's 20.10 classic, moby v2 with the
// containerd image store, moby v2 classic).
func TestLocal(t *testing.T) {
	testhelpers.ForEachDaemon(t, func(t *testing.T, cli *client.Client) {
		t.Logf("daemon: %s", describeDaemon(t, cli))
		t.Run("Suite", func(t *testing.T) { imagetest.Run(t, harness(t, cli)) })
		for _, tc := range []struct {
			name string
			f    func(*testing.T, *client.Client)
		}{
			{"RebuildSendsOnlyNewLayers", testRebuildSendsOnlyNewLayers},
			{"GetLayerReadsTheImageOnce", testGetLayerReadsTheImageOnce},
			{"FailedDownloadIsRemembered", testFailedDownloadIsRemembered},
			{"SaveFileLoadsAsTheSameImage", testSaveFileLoadsAsTheSameImage},
			{"SaveErrorPerName", testSaveErrorPerName},
			{"MissingBaseStartsEmpty", testMissingBaseStartsEmpty},
			{"DeletedPreviousImage", testDeletedPreviousImage},
			{"DeletedBase", testDeletedBase},
			{"BaseWithMissingBlobs", testBaseWithMissingBlobs},
			{"PlatformAware", testPlatformAware},
			{"CopyBetweenStores", testCopyBetweenStores},
			{"Faults", testFaults},
			{"CutLoadSentAgain", testCutLoadSentAgain},
			{"ConcurrentReads", testConcurrentReads},
			{"Progress", testProgress},
			{"VanishedLayerFileTagsNothing", testVanishedLayerFileTagsNothing},
			{"ConcurrentSavesSharingABase", testConcurrentSavesSharingABase},
			{"BadInput", testBadInput},
			{"FoundAndDeleteByOpenedID", testFoundAndDeleteByOpenedID},
			{"UneditedSaveFileKeepsTheID", testUneditedSaveFileKeepsTheID},
			{"LayoutSaveFileKeepsTheID", testLayoutSaveFileKeepsTheID},
			{"GetLayerReadsTheLowerLayers", testGetLayerReadsTheLowerLayers},
			{"ConcurrentSavesOfOneName", testConcurrentSavesOfOneName},
			{"LifecycleRunLeavesNothing", testLifecycleRunLeavesNothing},
			{"EveryProcessFirstSave", testEveryProcessFirstSave},
			{"EditedConfigKeepsWhatTheExistingLibraryKeeps", testEditedConfigKeepsWhatTheExistingLibraryKeeps},
			{"TamperedDaemonArchives", testTamperedDaemonArchives},
			{"EveryWaiterHasItsDeadline", testEveryWaiterHasItsDeadline},
			{"KilledProcessNamesAreSwept", testKilledProcessNamesAreSwept},
			{"KilledMidSaveLeavesNoStagingName", testKilledMidSaveLeavesNoStagingName},
			{"HeldSaveSurvivesOtherNamespaces", testHeldSaveSurvivesOtherNamespaces},
			{"ProbeRemovedUnderItIsRemade", testProbeRemovedUnderItIsRemade},
			{"ManyBuildsOneDaemon", testManyBuildsOneDaemon},
			{"LayerFilesWithoutProc", testLayerFilesWithoutProc},
			{"BuildToolLayerByteForByte", testBuildToolLayerByteForByte},
			{"SaveIndex", testSaveIndex},
		} {
			t.Run(tc.name, func(t *testing.T) { tc.f(t, cli) })
		}
	})
}

func describeDaemon(t *testing.T, cli *client.Client) string {
	v, err := cli.ServerVersion(context.Background(), client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store := "classic store"
	if containerdStore(t, cli) {
		store = "containerd image store"
	}
	return fmt.Sprintf("API %s, %s", v.APIVersion, store)
}
