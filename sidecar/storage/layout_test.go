package storage

import (
	"strings"
	"testing"
)

func TestLayoutRoundTrip(t *testing.T) {
	t.Parallel()
	l := NewLayout("/w")
	if l.Prefix != "/w/" || NewLayout("").Prefix != DefaultPrefix {
		t.Fatalf("prefixes %q %q", l.Prefix, NewLayout("").Prefix)
	}
	tests := []struct {
		name string
		key  string
		kind string
		segs []string
	}{
		{"account", l.Account("acc-1"), KindAccount, []string{"acc-1"}},
		{"issuer with slashes", l.Issuer("acc-1", "https://idp/a b"), KindIssuer, []string{"acc-1", "https://idp/a b"}},
		{"agent", l.Agent("acc-1", "usr-1"), KindAgent, []string{"acc-1", "usr-1"}},
		{"identity", l.Identity("acc-1", "i/s", "sub%2F"), KindIdentity, []string{"acc-1", "i/s", "sub%2F"}},
		{"init", l.Init("acc-1", "j"), KindInit, []string{"acc-1", "j"}},
		{"bootstrap", l.Bootstrap(), KindMeta, []string{"bootstrap"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := l.Parse(tc.key)
			if err != nil || k.Kind != tc.kind || strings.Join(k.Segs, "|") != strings.Join(tc.segs, "|") {
				t.Fatalf("Parse(%q) = %+v, %v", tc.key, k, err)
			}
		})
	}
	for _, bad := range []string{"/other/account/a", "/w/agent/acc-1", "/w/issuer/a/b/c", "/w/agent/a/%zz"} {
		if _, err := l.Parse(bad); err == nil {
			t.Fatalf("Parse(%q) succeeded", bad)
		}
	}
}

// FuzzLayout: every key built from any segments parses back to them.
func FuzzLayout(f *testing.F) {
	f.Add("acc-1", "https://idp/x", "sub")
	f.Add("", "%", "/")
	f.Fuzz(func(t *testing.T, acc, iss, sub string) {
		l := NewLayout("")
		k, err := l.Parse(l.Identity(acc, iss, sub))
		if err != nil || k.Kind != KindIdentity || k.Segs[0] != acc || k.Segs[1] != iss || k.Segs[2] != sub {
			t.Fatalf("identity (%q, %q, %q) parsed as %+v, %v", acc, iss, sub, k, err)
		}
		// Parsing arbitrary keys never panics.
		_, _ = l.Parse(l.Prefix + iss)
	})
}
