package layer_test

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/imgbridge/imgutil/layer"
)

type entry struct {
	name string
	typ  byte
	pax  map[string]string
}

func readAll(t *testing.T, b []byte) []entry {
	t.Helper()
	var out []entry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{h.Name, h.Typeflag, h.PAXRecords})
	}
}

func TestWindowsWriterLaysOutEntries(t *testing.T) {
	var buf bytes.Buffer
	w := layer.NewWindowsWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "/cnb/lifecycle/launcher", Typeflag: tar.TypeReg, Size: 2},
		{Name: "/cnb/lifecycle", Typeflag: tar.TypeDir},
		{Name: "/cnb/buildpacks", Typeflag: tar.TypeDir, Uid: 1000, Gid: 1000},
		{Name: "/workspace/app", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"foo": "bar"}},
	} {
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := w.Write([]byte("hi")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	admin := map[string]string{"MSWINDOWS.rawsd": layer.AdministratratorOwnerAndGroupSID}
	users := map[string]string{"MSWINDOWS.rawsd": layer.UserOwnerAndGroupSID}
	want := []entry{
		{"Files", tar.TypeDir, nil},
		{"Hives", tar.TypeDir, nil},
		{"Files/cnb", tar.TypeDir, nil},
		{"Files/cnb/lifecycle", tar.TypeDir, nil},
		{"Files/cnb/lifecycle/launcher", tar.TypeReg, admin},
		{"Files/cnb/buildpacks", tar.TypeDir, users},
		{"Files/workspace", tar.TypeDir, nil},
		{"Files/workspace/app", tar.TypeReg, map[string]string{"foo": "bar"}},
	}
	got := readAll(t, buf.Bytes())
	if len(got) != len(want) {
		t.Fatalf("entries = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].name != want[i].name || got[i].typ != want[i].typ || !mapsEqual(got[i].pax, want[i].pax) {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestWindowsWriterRejectsNonPOSIXNames(t *testing.T) {
	for _, name := range []string{`c:\windows-path.txt`, `\lonelyfile`, "Files/cnb/x"} {
		w := layer.NewWindowsWriter(&bytes.Buffer{})
		err := w.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg})
		if err == nil || err.Error() != "invalid header name: must be absolute, posix path: "+name {
			t.Errorf("WriteHeader(%q) = %v", name, err)
		}
	}
}

func TestWindowsWriterEmptyLayer(t *testing.T) {
	var buf bytes.Buffer
	if err := layer.NewWindowsWriter(&buf).Close(); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, buf.Bytes())
	if len(got) != 2 || got[0].name != "Files" || got[1].name != "Hives" {
		t.Fatalf("empty layer = %v, want Files and Hives", got)
	}
}

// TestSecurityDescriptors decodes the two constants: self-relative, owner
// at 20 and group at 36, no access lists, both SIDs S-1-5-32-<rid>.
func TestSecurityDescriptors(t *testing.T) {
	for _, tc := range []struct {
		sd  string
		rid uint32
	}{{layer.AdministratratorOwnerAndGroupSID, 544}, {layer.UserOwnerAndGroupSID, 545}} {
		b, err := base64.StdEncoding.DecodeString(tc.sd)
		if err != nil {
			t.Fatal(err)
		}
		le := binary.LittleEndian
		if len(b) != 52 || b[0] != 1 || le.Uint16(b[2:]) != 0x8000 || le.Uint32(b[4:]) != 20 || le.Uint32(b[8:]) != 36 ||
			le.Uint32(b[12:]) != 0 || le.Uint32(b[16:]) != 0 {
			t.Fatalf("descriptor %x: bad header", b)
		}
		for _, off := range []int{20, 36} {
			sid := b[off : off+16]
			if sid[0] != 1 || sid[1] != 2 || !bytes.Equal(sid[2:8], []byte{0, 0, 0, 0, 0, 5}) ||
				le.Uint32(sid[8:]) != 32 || le.Uint32(sid[12:]) != tc.rid {
				t.Errorf("SID at %d = %x, want S-1-5-32-%d", off, sid, tc.rid)
			}
		}
	}
}

// TestBaseLayerBCD reads the hive with an independent reader (hivex):
// exactly the boot store's keys and values.
func TestBaseLayerBCD(t *testing.T) {
	bin, err := exec.LookPath("hivexregedit")
	if err != nil {
		if os.Getenv("IMGUTIL_REQUIRE_DAEMON") != "" {
			t.Fatal("hivexregedit is not installed (apt-get install libwin-hivex-perl libhivex-bin)")
		}
		t.Skip("skipped: hivexregedit is not installed (apt-get install libwin-hivex-perl libhivex-bin)")
	}
	hive, err := layer.BaseLayerBCD()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "BCD")
	if err := os.WriteFile(path, hive, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--export", path, `\`).Output()
	if err != nil {
		t.Fatalf("hivexregedit --export: %v", err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "bcd-export.reg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("hivexregedit reads:\n%s\nwant:\n%s", out, want)
	}
}

func TestWindowsBaseLayer(t *testing.T) {
	r, err := layer.WindowsBaseLayer()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "UtilityVM/Files/EFI/Microsoft/Boot/BCD" {
			content, _ := io.ReadAll(tr)
			bcd, _ := layer.BaseLayerBCD()
			if !bytes.Equal(content, bcd) || h.Mode != 0o644 {
				t.Errorf("BCD entry: mode %o, %d bytes; want the hive, mode 644", h.Mode, len(content))
			}
		}
	}
	want := []string{"UtilityVM", "UtilityVM/Files", "UtilityVM/Files/EFI", "UtilityVM/Files/EFI/Microsoft",
		"UtilityVM/Files/EFI/Microsoft/Boot", "UtilityVM/Files/EFI/Microsoft/Boot/BCD",
		"Files", "Files/Windows", "Files/Windows/System32", "Files/Windows/System32/config",
		"Files/Windows/System32/config/DEFAULT", "Files/Windows/System32/config/SAM",
		"Files/Windows/System32/config/SECURITY", "Files/Windows/System32/config/SOFTWARE",
		"Files/Windows/System32/config/SYSTEM"}
	if !slices.Equal(names, want) {
		t.Fatalf("base layer entries = %v, want %v", names, want)
	}
	r2, _ := layer.WindowsBaseLayer()
	b2, _ := io.ReadAll(r2)
	if !bytes.Equal(b, b2) {
		t.Fatal("two base layers differ")
	}
}
