// Package abi is version 1 of the ABI between Warden and its policy hooks,
// shared by the host runtime and the guest kit: the exports a hook module
// has, and the JSON encoding of strings both sides write. It has no
// dependencies, so guests can import it. docs/hooks.md describes the ABI.
package abi

import "unicode/utf8"

// Version is the ABI version; a hook's warden_abi_version returns it.
const Version = 1

// The exports of a hook module.
const (
	// ExportVersion: func() i32, the ABI version the module speaks.
	ExportVersion = "warden_abi_version"
	// ExportAlloc: func(size i32) i32, a buffer of size bytes in the
	// guest's memory for the next input.
	ExportAlloc = "warden_alloc"
	// ExportEvaluate: func(ptr, len i32) i64, evaluates the input at
	// [ptr, ptr+len) and returns the answer's pointer << 32 | its length.
	ExportEvaluate = "warden_evaluate"
	// ExportInit: a reactor's initializer, called once per instance when
	// the module exports it (Go's -buildmode=c-shared does).
	ExportInit = "_initialize"
)

// AppendString appends s to b as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func AppendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
