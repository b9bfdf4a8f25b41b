package layer

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
)

// This file writes Windows registry hive files (the "regf" format): a 4 KiB
// base block, then hive bins of cells. A cell is an int32 size (negative
// while in use, a multiple of 8, counting itself) and its data; cells refer
// to each other by offsets from the start of the first bin. Keys are "nk"
// cells with an "lf" list of subkeys (sorted by upper-case name) and a list
// of "vk" value cells; every key shares one "sk" security cell.

// Registry value types.
const (
	regSZ    = 1
	regDWORD = 4
)

// hiveKey is a registry key to write: its name, values and subkeys.
type hiveKey struct {
	name    string
	values  []hiveValue
	subkeys []*hiveKey
}

// hiveValue is a registry value: REG_SZ (str) or REG_DWORD (dword).
type hiveValue struct {
	name  string
	typ   uint32
	str   string
	dword uint32
}

func szValue(name, s string) hiveValue { return hiveValue{name: name, typ: regSZ, str: s} }

func dwordValue(name string, v uint32) hiveValue {
	return hiveValue{name: name, typ: regDWORD, dword: v}
}

const (
	baseBlockSize = 4096
	binHeaderSize = 32
	binAlign      = 4096
	noCell        = 0xFFFFFFFF

	keyHiveEntry = 0x0004 // the root key
	keyNoDelete  = 0x0008
	keyCompName  = 0x0020 // the name is stored as ASCII
	valCompName  = 0x0001
)

// cells is the content of the hive bins, cells appended in order. Offsets
// are from the start of the first bin, whose header takes the first bytes.
type cells struct{ b []byte }

// alloc appends a cell with room for n bytes of data and returns its
// offset and its data slice (valid until the next alloc).
func (c *cells) alloc(n int) uint32 {
	size := (4 + n + 7) &^ 7
	off := uint32(len(c.b))
	c.b = append(c.b, make([]byte, size)...)
	binary.LittleEndian.PutUint32(c.b[off:], uint32(-int32(size)))
	return off
}

// data returns the data of the cell at off (after its size field).
func (c *cells) data(off uint32) []byte {
	size := -int32(binary.LittleEndian.Uint32(c.b[off:]))
	return c.b[off+4 : off+uint32(size)]
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return b
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// writeHive returns the hive file holding the tree under root, with sd
// (a self-relative security descriptor) on every key.
func writeHive(root *hiveKey, sd []byte) ([]byte, error) {
	for _, k := range walkKeys(root) {
		if !isASCII(k.name) {
			return nil, fmt.Errorf("key name %q: only ASCII names are written", k.name)
		}
		for _, v := range k.values {
			if !isASCII(v.name) {
				return nil, fmt.Errorf("value name %q: only ASCII names are written", v.name)
			}
		}
	}
	c := &cells{b: make([]byte, binHeaderSize)}
	// The security cell comes first: every key names it.
	skOff := c.alloc(20 + len(sd))
	d := c.data(skOff)
	copy(d, "sk")
	binary.LittleEndian.PutUint32(d[4:], skOff) // the only one: linked to itself
	binary.LittleEndian.PutUint32(d[8:], skOff)
	binary.LittleEndian.PutUint32(d[12:], uint32(len(walkKeys(root))))
	binary.LittleEndian.PutUint32(d[16:], uint32(len(sd)))
	copy(d[20:], sd)

	rootOff := writeKey(c, root, noCell, skOff, true)

	// One bin holds every cell; the rest of it is one free cell.
	binSize := (len(c.b) + binAlign - 1) / binAlign * binAlign
	if free := binSize - len(c.b); free > 0 {
		if free < 8 {
			free += binAlign
		}
		start := len(c.b)
		c.b = append(c.b, make([]byte, free)...)
		binary.LittleEndian.PutUint32(c.b[start:], uint32(free))
	}
	bin := c.b
	copy(bin, "hbin")
	binary.LittleEndian.PutUint32(bin[4:], 0)
	binary.LittleEndian.PutUint32(bin[8:], uint32(len(bin)))

	base := make([]byte, baseBlockSize)
	copy(base, "regf")
	binary.LittleEndian.PutUint32(base[0x04:], 1) // primary and secondary
	binary.LittleEndian.PutUint32(base[0x08:], 1) // sequence numbers equal: clean
	binary.LittleEndian.PutUint32(base[0x14:], 1) // version 1.3
	binary.LittleEndian.PutUint32(base[0x18:], 3)
	binary.LittleEndian.PutUint32(base[0x1C:], 0) // primary file
	binary.LittleEndian.PutUint32(base[0x20:], 1) // direct memory load
	binary.LittleEndian.PutUint32(base[0x24:], rootOff)
	binary.LittleEndian.PutUint32(base[0x28:], uint32(len(bin)))
	binary.LittleEndian.PutUint32(base[0x2C:], 1) // clustering factor
	binary.LittleEndian.PutUint32(base[0x1FC:], baseBlockChecksum(base))
	return append(base, bin...), nil
}

// baseBlockChecksum is the XOR of the base block's first 508 bytes as
// little-endian words, never 0 nor all ones.
func baseBlockChecksum(base []byte) uint32 {
	var sum uint32
	for i := 0; i < 0x1FC; i += 4 {
		sum ^= binary.LittleEndian.Uint32(base[i:])
	}
	switch sum {
	case 0:
		return 1
	case 0xFFFFFFFF:
		return 0xFFFFFFFE
	}
	return sum
}

func walkKeys(k *hiveKey) []*hiveKey {
	out := []*hiveKey{k}
	for _, s := range k.subkeys {
		out = append(out, walkKeys(s)...)
	}
	return out
}

// writeKey writes k (its nk cell, subkeys, list and values) and returns the
// offset of its nk cell.
func writeKey(c *cells, k *hiveKey, parent, sk uint32, root bool) uint32 {
	const nkSize = 0x4C
	off := c.alloc(nkSize + len(k.name))

	subs := slices.Clone(k.subkeys)
	slices.SortFunc(subs, func(a, b *hiveKey) int { return strings.Compare(strings.ToUpper(a.name), strings.ToUpper(b.name)) })
	subOffs := make([]uint32, len(subs))
	maxSub := 0
	for i, s := range subs {
		subOffs[i] = writeKey(c, s, off, sk, false)
		maxSub = max(maxSub, len(s.name))
	}
	listOff := uint32(noCell)
	if len(subs) > 0 {
		listOff = c.alloc(4 + 8*len(subs))
		d := c.data(listOff)
		copy(d, "lf")
		binary.LittleEndian.PutUint16(d[2:], uint16(len(subs)))
		for i, s := range subs {
			binary.LittleEndian.PutUint32(d[4+8*i:], subOffs[i])
			copy(d[8+8*i:12+8*i], s.name) // the hint: up to 4 first characters
		}
	}

	valueOffs := make([]uint32, len(k.values))
	maxName, maxData := 0, 0
	for i, v := range k.values {
		valueOffs[i] = writeValue(c, v)
		maxName = max(maxName, 2*len(v.name))
		maxData = max(maxData, valueSize(v))
	}
	valuesOff := uint32(noCell)
	if len(k.values) > 0 {
		valuesOff = c.alloc(4 * len(k.values))
		d := c.data(valuesOff)
		for i, o := range valueOffs {
			binary.LittleEndian.PutUint32(d[4*i:], o)
		}
	}

	d := c.data(off)
	copy(d, "nk")
	flags := uint16(keyCompName)
	if root {
		flags |= keyHiveEntry | keyNoDelete
	}
	le := binary.LittleEndian
	le.PutUint16(d[0x02:], flags)
	le.PutUint32(d[0x10:], parent)
	le.PutUint32(d[0x14:], uint32(len(subs)))
	le.PutUint32(d[0x1C:], listOff)
	le.PutUint32(d[0x20:], noCell) // no volatile subkeys
	le.PutUint32(d[0x24:], uint32(len(k.values)))
	le.PutUint32(d[0x28:], valuesOff)
	le.PutUint32(d[0x2C:], sk)
	le.PutUint32(d[0x30:], noCell) // no class name
	le.PutUint32(d[0x34:], uint32(2*maxSub))
	le.PutUint32(d[0x3C:], uint32(maxName))
	le.PutUint32(d[0x40:], uint32(maxData))
	le.PutUint16(d[0x48:], uint16(len(k.name)))
	copy(d[nkSize:], k.name)
	return off
}

func valueSize(v hiveValue) int {
	if v.typ == regDWORD {
		return 4
	}
	return len(utf16le(v.str)) + 2
}

// writeValue writes v's vk cell (and its data cell, for a string) and
// returns the vk cell's offset. A DWORD is stored in the vk cell itself.
func writeValue(c *cells, v hiveValue) uint32 {
	const vkSize = 0x14
	var size, dataOff uint32
	if v.typ == regDWORD {
		size, dataOff = 4|0x80000000, v.dword
	} else {
		data := append(utf16le(v.str), 0, 0) // terminating NUL
		dataOff = c.alloc(len(data))
		copy(c.data(dataOff), data)
		size = uint32(len(data))
	}
	off := c.alloc(vkSize + len(v.name))
	d := c.data(off)
	copy(d, "vk")
	le := binary.LittleEndian
	le.PutUint16(d[0x02:], uint16(len(v.name)))
	le.PutUint32(d[0x04:], size)
	le.PutUint32(d[0x08:], dataOff)
	le.PutUint32(d[0x0C:], v.typ)
	le.PutUint16(d[0x10:], valCompName)
	copy(d[vkSize:], v.name)
	return off
}
