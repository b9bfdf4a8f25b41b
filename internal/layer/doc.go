// Package layer reads, checks and writes layer files: a layer's diffID,
// digest and uncompressed size from one read, and tar streams that can never
// write outside their root.
package layer
