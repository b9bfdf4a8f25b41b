// Package editable is the one editable-image core that the local, remote and
// layout backends share: config, manifest and layer edits over a
// go-containerregistry image, materialized once per batch of edits.
package editable
