package model

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// refActionMatches is the action rule written the plain way, to check
// ActionMatches against.
func refActionMatches(granted, requested string) bool {
	if granted == requested {
		return true
	}
	g, r := strings.Split(granted, ":"), strings.Split(requested, ":")
	for i, rs := range r {
		if i >= len(g) || g[i] == "" {
			return false
		}
		if g[i] == "*" {
			return true
		}
		if g[i] != rs {
			return false
		}
	}
	return false
}

func FuzzActionMatches(f *testing.F) {
	for _, s := range [][2]string{{"*", "a"}, {"a:*", "a"}, {"a:b:c", "a:b"}, {"a:", "a:x"}, {"", ""}, {"a::b", "a::b"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, g, r string) {
		if got, want := ActionMatches(g, r), refActionMatches(g, r); got != want {
			t.Fatalf("ActionMatches(%q, %q) = %v, reference %v", g, r, got, want)
		}
		if !ActionMatches(r, r) {
			t.Fatalf("not reflexive for %q", r)
		}
	})
}

func FuzzResourceCovers(f *testing.F) {
	for _, s := range [][2]string{{"/account/a", "/account/ab/"}, {"", ""}, {"/", "x"}, {"a", "a/"}, {"//", "/"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, g, r string) {
		n := NormalizeResource(r)
		if !strings.HasPrefix(n, "/") || !strings.HasSuffix(n, "/") || NormalizeResource(n) != n {
			t.Fatalf("NormalizeResource(%q) = %q", r, n)
		}
		want := strings.HasPrefix(n, NormalizeResource(g))
		if got := ResourceCovers(g, r); got != want {
			t.Fatalf("ResourceCovers(%q, %q) = %v, want %v", g, r, got, want)
		}
		if !ResourceCovers(r, r) {
			t.Fatalf("not reflexive for %q", r)
		}
	})
}

func FuzzValidateAction(f *testing.F) {
	for _, s := range []string{"*", "*:get", "a:*", "a:*:b", "", ":", "a::*", "fun ction:get", "a-b_c:D9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, a string) {
		if ValidateAction(a) != nil {
			return
		}
		segs := strings.Split(a, ":")
		for i, s := range segs {
			if s == "*" && i < len(segs)-1 {
				t.Fatalf("accepted %q with a segment after '*' at %d", a, i)
			}
			if s != "*" && (s == "" || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "") {
				t.Fatalf("accepted %q with the segment %q", a, s)
			}
		}
	})
}

func FuzzValidateResource(f *testing.F) {
	for _, s := range []string{"/", "//", "/a/../b/", "a", "/a/./", "/a b/", "/{{x}}/", "/%2e%2e/", "/a\x00/", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, r string) {
		if err := ValidateResource(r); err != nil {
			// The one-pass check and the one that explains agree.
			if strings.Contains(err.Error(), "breaks the grammar") {
				t.Fatalf("%q: the fast check refused what the explanation accepts: %v", r, err)
			}
			return
		}
		if resourceProblem(r) == nil || !strings.Contains(resourceProblem(r).Error(), "breaks the grammar") {
			t.Fatalf("%q: the fast check accepted what the explanation refuses: %v", r, resourceProblem(r))
		}
		n := NormalizeResource(r)
		if n != "/" {
			for _, seg := range strings.Split(n[1:len(n)-1], "/") {
				if seg == "" || seg == "." || seg == ".." {
					t.Fatalf("accepted %q with the segment %q", r, seg)
				}
			}
		}
		if strings.Contains(r, "{{") || strings.ContainsFunc(r, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }) || !utf8.ValidString(r) {
			t.Fatalf("accepted %q", r)
		}
		// What is valid stays valid once normalized.
		if err := ValidateResource(n); err != nil {
			t.Fatalf("%q is valid but its normal form %q is not: %v", r, n, err)
		}
	})
}

func FuzzAccountFromResource(f *testing.F) {
	for _, s := range []string{"/account/acc-1/x", "account/", "/account//x", "", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, r string) {
		acc, ok := AccountFromResource(r)
		if ok && (acc == "" || strings.Contains(acc, "/") || !strings.Contains(r, "account/"+acc)) {
			t.Fatalf("AccountFromResource(%q) = %q", r, acc)
		}
	})
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"/a/{{x}}/", "{{", "{{}}", "{{ a }}{{b}}", "}}{{"} {
		f.Add(s, "v")
	}
	f.Fuzz(func(t *testing.T, s, v string) {
		names, err := TemplateNames(s)
		if err != nil || strings.ContainsAny(v, "{}") {
			return
		}
		params := map[string]string{}
		for _, n := range names {
			params[n] = v
		}
		out, err := ExpandTemplate(s, params)
		if err != nil {
			t.Fatalf("ExpandTemplate(%q) failed after TemplateNames succeeded: %v", s, err)
		}
		if len(names) > 0 && strings.Count(out, "{{") >= strings.Count(s, "{{") {
			t.Fatalf("ExpandTemplate(%q) = %q left templates", s, out)
		}
	})
}

// FuzzNarrow: whatever Narrow accepts is covered by the agent's grants.
func FuzzNarrow(f *testing.F) {
	f.Add("function:*", "/account/a/", "function:get", "/account/a/x", "function:get", "/account/a/x/y")
	f.Add("*", "/", "*", "/", "a", "/b")
	f.Fuzz(func(t *testing.T, ga, gr, ia, ir, pa, pr string) {
		agent := []Permission{{Action: ga, Resource: gr}}
		eff, err := Narrow(agent, []Permission{{Action: ia, Resource: ir}})
		if err != nil {
			return
		}
		for _, probe := range []Permission{{pa, pr}, {ia, ir}, {ia, pr}, {pa, ir}} {
			if _, ok := Covers(eff, probe.Action, probe.Resource); ok {
				if _, ok := Covers(agent, probe.Action, probe.Resource); !ok {
					t.Fatalf("narrowed %v to %v, which covers %v that the agent lacks", agent, eff, probe)
				}
			}
		}
	})
}
