package containerd

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/snapshots"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// snapshotLabel is the config label by which containerd's garbage
// collection keeps an image's snapshots, and by which runtimes find it
// unpacked for a snapshotter.
func snapshotLabel(snapshotter string) string { return "containerd.io/gc.ref.snapshot." + snapshotter }

// topChain is the chain ID of the snapshot of all of diffIDs.
func topChain(diffIDs []digest.Digest) digest.Digest { return identity.ChainID(slices.Clone(diffIDs)) }

// unpack makes the snapshots of the layers descs (whose diffIDs are
// diffIDs) for snapshotter, as containerd's unpacker does but
// asking only what a rebuild needs: the snapshots of the lower layers are
// found from the top down (those of the base and previous images exist),
// and only the layers above them are applied, each checked against its
// diffID. Snapshots made under ctx's lease are held until the config's
// snapshot label (written with the config) holds them.
func (i *Image) unpack(ctx context.Context, snapshotter string, descs []ocispec.Descriptor, diffIDs []digest.Digest) error {
	sn := i.client.SnapshotService(snapshotter)
	// ChainIDs writes the chain IDs over its argument.
	chains := identity.ChainIDs(slices.Clone(diffIDs))
	have := len(chains)
	for ; have > 0; have-- {
		_, err := sn.Stat(ctx, chains[have-1].String())
		if err == nil {
			break
		}
		if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("looking up snapshot %s: %w", chains[have-1], err)
		}
	}
	for j := have; j < len(chains); j++ {
		parent := ""
		if j > 0 {
			parent = chains[j-1].String()
		}
		if err := i.applyLayer(ctx, sn, descs[j], diffIDs[j], parent, chains[j].String()); err != nil {
			return fmt.Errorf("layer %d: %w", j, err)
		}
		if testHookApplied != nil {
			testHookApplied()
		}
	}
	return nil
}

// testHookApplied, set by tests, is called after each layer unpack
// applies (a save made slow between requests, not within one).
var testHookApplied func()

// applyLayer applies the layer desc onto the snapshot parent and commits
// it as chain; a chain committed meanwhile (another unpack) is taken.
func (i *Image) applyLayer(ctx context.Context, sn snapshots.Snapshotter, desc ocispec.Descriptor, diffID digest.Digest, parent, chain string) error {
	key := "imgutil-extract-" + strings.ToLower(rand.Text()[:12]) + "-" + chain
	labels := map[string]string{snapshots.LabelSnapshotRef: chain, snapshots.LabelSnapshotDiffID: diffID.String()}
	mounts, err := sn.Prepare(ctx, key, parent, snapshots.WithLabels(labels))
	if err != nil {
		if cerrdefs.IsAlreadyExists(err) {
			return nil
		}
		return fmt.Errorf("preparing snapshot: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = sn.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	got, err := i.client.DiffService().Apply(ctx, desc, mounts)
	if err != nil {
		return fmt.Errorf("applying: %w", err)
	}
	if got.Digest != diffID {
		return fmt.Errorf("layer %s (%s) unpacks to %s, not its diff ID %s", desc.Digest, desc.MediaType, got.Digest, diffID)
	}
	err = sn.Commit(ctx, chain, key, snapshots.WithLabels(labels))
	switch {
	case err == nil:
		committed = true
	case cerrdefs.IsAlreadyExists(err):
	default:
		return fmt.Errorf("committing snapshot: %w", err)
	}
	return nil
}
