// Package archive writes image archives (`docker load`-able tars, which are
// OCI layouts too when their blobs are as stored) from a config and layers,
// streaming, without staging them on disk:
//   - archive.go: the tar writer (Write; WriteToLoad, which ends a failed
//     archive in order for a daemon reading it) and its entries;
//   - verify.go: file entries checked against their digests, by reading back
//     what was written (files known good are not read again);
//   - entries.go: the entries of an image's archive (Docker, ImageEntries)
//     and the names in it (Tag);
//   - file.go: archives written to files (WriteFile, WriteImageFile), and
//     the partial files of killed processes swept;
//   - progress.go: progress reports of entries and streams.
package archive
