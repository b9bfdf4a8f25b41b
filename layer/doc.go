// Package layer writes Windows container layers: a tar writer that lays
// entries out as Windows daemons expect (NewWindowsWriter), and the minimal
// Windows base layer with its boot configuration hive (WindowsBaseLayer).
package layer
