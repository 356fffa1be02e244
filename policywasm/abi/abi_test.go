package abi

import (
	"encoding/json"
	"testing"
)

// FuzzAppendString: what AppendString writes, encoding/json reads back as
// the same string (invalid UTF-8 as U+FFFD on both sides).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"\\", "\x00\x1f\x7f", "é😀", "\xff\xfe", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("AppendString(%q) = %s, not JSON: %v", s, out, err)
		}
		var want string
		ref, _ := json.Marshal(s)
		_ = json.Unmarshal(ref, &want)
		if back != want {
			t.Fatalf("AppendString(%q) reads back as %q, encoding/json's as %q", s, back, want)
		}
	})
}
