// Package testhelpers builds test images offline — a runnable busybox-static
// base, layer files with chosen or random content — and checks images, for
// the tests of this module and of its users.
//
// Where things are: busybox.go and layers.go (test images and layer
// files); checks.go (CheckImage, CheckGetLayer, DiffIDs: an image is
// whole and right); docker.go (the daemons a test runs against, loads and
// reads); registry.go and docker_registry.go (a real registry on a loopback
// port, with or without auth); layout.go (OCI layouts); singleconn.go and
// lifecycleconn.go (clients that behave as the lifecycle's one connection
// does). The familiar_*.go files are the names buildpacks tools' tests
// already call (the existing library's testhelpers: asserts, tar files,
// docker commands, registry reads), working offline.
package testhelpers
