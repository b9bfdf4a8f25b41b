// Package compat holds the drop-in proof: tests written the way the
// buildpacks lifecycle exporter and pack's image factory call the API, with
// only the import paths changed, run against a real daemon and registry.
package compat
