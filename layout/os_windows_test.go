package layout_test

import "io/fs"

// syncAll: Windows has no system-wide sync; the benchmark runs on Linux.
func syncAll() {}

// umask: Windows has none.
func umask() fs.FileMode { return 0 }
