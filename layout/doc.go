// Package layout saves and edits images in OCI image layouts on disk: one
// layout directory per image name.
package layout
