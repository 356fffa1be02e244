package routes

import (
	"strings"
	"testing"
)

// FuzzParse: any table is parsed and compiled, or refused with an error;
// never a panic.
func FuzzParse(f *testing.F) {
	f.Add(table)
	f.Add("routes:\n  - name: a\n    path: /x/{id}/b\n  - name: b\n    path: /x/a/{id}\n")
	f.Add("default: {authentication: required, authorization: [{action: a, resource: /}]}\n")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse([]byte(text))
		if err != nil {
			return
		}
		tbl, err := Compile(s)
		if err != nil {
			return
		}
		_, _ = tbl.Match("GET", "h", "/x/a/b")
	})
}

// FuzzCleanPath: a path CleanPath lets through starts with '/' and has no
// dot or empty segment, no ';', backslash or control character.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/a/b", "/a/%2e%2e/b", "//a", "/a;b", "/%252e", "http://h/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		p, err := CleanPath(uri)
		if err != nil {
			return
		}
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, ";\\") || strings.Contains(p, "//") {
			t.Fatalf("CleanPath(%q) = %q", uri, p)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("CleanPath(%q) = %q has a dot segment", uri, p)
			}
		}
	})
}
