// Package archive streams image archives (`docker load`-able tars) from a
// config and layers, without staging them on disk.
package archive
