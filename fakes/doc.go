// Package fakes is an in-memory imgutil.Image (and a small image index) for
// the unit tests of programs that use imgutil: layers are files on disk,
// saves are recorded, and accessors tell a test what was done.
package fakes
