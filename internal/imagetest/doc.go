// Package imagetest is the behaviour suite of the imgutil.Image contract,
// written once and run by every backend's tests.
package imagetest
