package main

import "testing"

// A layout path is taken whole after "oci:": Windows paths with a drive
// letter, long paths and colons in them included.
func TestLayoutTargets(t *testing.T) {
	long := "oci:C:\\Users\\builder\\AppData\\Local\\imgutil\\" + "very\\deep\\path\\to\\a\\layout\\holding\\the\\run\\image\\of\\the\\builder\\app:1"
	for in, want := range map[string]string{
		`oci:C:\images\app`:        `C:\images\app`,
		`oci:\\?\C:\images\app`:    `\\?\C:\images\app`,
		`oci:\\server\share\app`:   `\\server\share\app`,
		"oci:./app:with-colon":     "./app:with-colon",
		"oci:/var/lib/layouts/app": "/var/lib/layouts/app",
		long:                       long[len("oci:"):],
	} {
		got, err := parseTarget(in)
		if err != nil {
			t.Errorf("parseTarget(%q): %v", in, err)
			continue
		}
		if got.kind != "oci" || got.name != want {
			t.Errorf("parseTarget(%q) = %+v, want the layout %q", in, got, want)
		}
	}
}
