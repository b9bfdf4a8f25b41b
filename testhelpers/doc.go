// Package testhelpers builds test images offline — a runnable busybox-static
// base, layer files with chosen or random content — and checks images, for
// the tests of this module and of its users.
package testhelpers
