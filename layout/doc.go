// Package layout saves and edits images in OCI image layouts on disk: one
// layout directory per image name.
//
// Where things are: image.go (NewImage, Found, Valid, Save, SaveFile),
// read.go (a layout read: index, platform, metadata bounded in size),
// blob.go and absent.go (layers read from a layout, within it, checked
// against their digests; blobs absent from a sparse layout), write.go (a
// save: blobs through temp files, index.json replaced last, nothing left on
// failure), saveindex.go (SaveIndex: a multi-platform image saved the same
// way), index.go (NewIndex), path.go and bytes.go (Path, the
// go-containerregistry-style layout API), identifier.go, options.go.
package layout
