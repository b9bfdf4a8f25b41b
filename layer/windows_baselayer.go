package layer

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"time"
)

// BCD object identifiers of the boot store: the boot manager's application
// object and the OS loader entry it boots.
const (
	bcdLoaderObject  = "{6a6c1f1b-59d4-11ea-9438-9402e6abd998}"
	bcdBootmgrObject = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}"
)

// BaseLayerBCD returns a Windows registry hive holding the boot
// configuration store that `bcdedit /createstore`, `/create {bootmgr}` and
// an OS loader entry make: what a Windows daemon needs in a base layer's
// UtilityVM to accept it.
func BaseLayerBCD() ([]byte, error) {
	object := func(id string, typ uint32, element string, value string) *hiveKey {
		return &hiveKey{name: id, subkeys: []*hiveKey{
			{name: "Description", values: []hiveValue{dwordValue("Type", typ)}},
			{name: "Elements", subkeys: []*hiveKey{
				{name: element, values: []hiveValue{szValue("Element", value)}},
			}},
		}}
	}
	root := &hiveKey{name: "NewStoreRoot", subkeys: []*hiveKey{
		{name: "Description", values: []hiveValue{
			dwordValue("FirmwareModified", 1),
			szValue("KeyName", "BCD00000000"),
		}},
		{name: "Objects", subkeys: []*hiveKey{
			object(bcdLoaderObject, 0x10200003, "12000004", "buildpacks.io"),
			object(bcdBootmgrObject, 0x10100002, "23000003", bcdLoaderObject),
		}},
	}}
	sd, err := base64.StdEncoding.DecodeString(AdministratratorOwnerAndGroupSID)
	if err != nil {
		return nil, fmt.Errorf("decoding security descriptor: %w", err)
	}
	return writeHive(root, sd)
}

// baseLayerTime dates every entry of the base layer, so that its bytes (and
// diffID) are always the same.
var baseLayerTime = time.Date(1980, time.January, 1, 0, 0, 1, 0, time.UTC)

// WindowsBaseLayer returns the tar of the minimal base layer Windows
// daemons accept for an image from scratch: a UtilityVM with the boot
// configuration hive (BaseLayerBCD) and Files with empty registry hives
// under Windows/System32/config. The same bytes every time.
func WindowsBaseLayer() (io.Reader, error) {
	bcd, err := BaseLayerBCD()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: baseLayerTime})
	}
	file := func(name string, content []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content)), ModTime: baseLayerTime}); err != nil {
			return err
		}
		_, err := tw.Write(content)
		return err
	}
	steps := []func() error{
		func() error { return dir("UtilityVM") },
		func() error { return dir("UtilityVM/Files") },
		func() error { return dir("UtilityVM/Files/EFI") },
		func() error { return dir("UtilityVM/Files/EFI/Microsoft") },
		func() error { return dir("UtilityVM/Files/EFI/Microsoft/Boot") },
		func() error { return file("UtilityVM/Files/EFI/Microsoft/Boot/BCD", bcd) },
		func() error { return dir("Files") },
		func() error { return dir("Files/Windows") },
		func() error { return dir("Files/Windows/System32") },
		func() error { return dir("Files/Windows/System32/config") },
	}
	for _, hive := range []string{"DEFAULT", "SAM", "SECURITY", "SOFTWARE", "SYSTEM"} {
		steps = append(steps, func() error { return file("Files/Windows/System32/config/"+hive, nil) })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("writing the Windows base layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing the Windows base layer: %w", err)
	}
	return &buf, nil
}
