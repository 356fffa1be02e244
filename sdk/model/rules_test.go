package model

import (
	"errors"
	"strings"
	"testing"
)

// Each table below is one rule of DESIGN.md's "The model, exactly".

func TestRuleIDs(t *testing.T) {
	t.Parallel()
	for _, p := range []string{AccountPrefix, SubscriptionPrefix, UserPrefix, ClientPrefix} {
		a, b := NewID(p), NewID(p)
		if !ValidID(p, a) || a == b {
			t.Fatalf("NewID(%q) = %q, %q", p, a, b)
		}
	}
	tests := []struct {
		name, prefix, id string
		ok               bool
	}{
		{"valid", "usr-", "usr-0123456789abcdef", true},
		{"uppercase hex", "usr-", "usr-0123456789ABCDEF", false},
		{"too short", "usr-", "usr-0123456789abcde", false},
		{"too long", "usr-", "usr-0123456789abcdef0", false},
		{"other prefix", "usr-", "clt-0123456789abcdef", false},
		{"not hex", "acc-", "acc-0123456789abcdeg", false},
		{"empty", "acc-", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidID(tc.prefix, tc.id); got != tc.ok {
				t.Fatalf("ValidID(%q, %q) = %v", tc.prefix, tc.id, got)
			}
		})
	}
	if AgentTypeOf("usr-0123456789abcdef") != AgentUser || AgentTypeOf("clt-0123456789abcdef") != AgentClient || AgentTypeOf("acc-0123456789abcdef") != "" {
		t.Fatal("AgentTypeOf")
	}
}

func TestRuleResourceNormalization(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"empty", "", "/"},
		{"root", "/", "/"},
		{"adds both", "account/a", "/account/a/"},
		{"adds trailing", "/account/a", "/account/a/"},
		{"adds leading", "account/a/", "/account/a/"},
		{"keeps normalized", "/account/a/", "/account/a/"},
		{"no decoding", "/a%2Fb", "/a%2Fb/"},
		{"no case folding", "/Account/A", "/Account/A/"},
		{"no collapsing", "//a//b", "//a//b/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := NormalizeResource(tc.in); got != tc.want {
				t.Fatalf("NormalizeResource(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRuleResourceMatching(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, granted, requested string
		want                     bool
	}{
		{"prefix covers deeper", "/account/a", "/account/a/x/", true},
		{"not a segment prefix", "/account/a", "/account/ab/", false},
		{"root covers everything", "/", "/anything/at/all", true},
		{"empty grant is root", "", "/x", true},
		{"equal", "/account/a/", "/account/a/", true},
		{"requested without slashes", "/account/a/", "account/a", true},
		{"grant without slashes", "account/a", "/account/a/x", true},
		{"shorter request", "/account/a/x", "/account/a", false},
		{"case matters", "/account/A", "/account/a", false},
		{"no decoding", "/a/b", "/a%2Fb", false},
		{"double slash kept", "/a//", "/a/", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ResourceCovers(tc.granted, tc.requested); got != tc.want {
				t.Fatalf("ResourceCovers(%q, %q) = %v", tc.granted, tc.requested, got)
			}
			ref := strings.HasPrefix(NormalizeResource(tc.requested), NormalizeResource(tc.granted))
			if ref != tc.want {
				t.Fatalf("reference disagrees with the table")
			}
		})
	}
}

func TestResourceCoversDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { ResourceCovers("account/a", "account/a/b") }); n != 0 {
		t.Fatalf("ResourceCovers allocates %v times", n)
	}
}

func TestRuleAccountFromResource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, acc string
		ok            bool
	}{
		{"account path", "/account/acc-1/x", "acc-1", true},
		{"no leading slash", "account/acc-1", "acc-1", true},
		{"account only", "/account/acc-1/", "acc-1", true},
		{"no account", "/account/", "", false},
		{"other path", "/subscription/x", "", false},
		{"prefix only", "/accounts/acc-1", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if acc, ok := AccountFromResource(tc.in); acc != tc.acc || ok != tc.ok {
				t.Fatalf("AccountFromResource(%q) = %q, %v", tc.in, acc, ok)
			}
		})
	}
}

func TestRuleActionMatching(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, granted, requested string
		want                     bool
	}{
		{"equal", "function:get", "function:get", true},
		{"star matches everything", "*", "function:get", true},
		{"star matches one segment", "*", "a", true},
		{"prefix star", "function:*", "function:get", true},
		{"prefix star deeper", "function:*", "function:log:get", true},
		{"prefix star needs a segment", "function:*", "function", false},
		{"shorter grant without star", "function", "function:get", false},
		{"longer grant", "a:b:c", "a:b", false},
		{"other segment", "function:get", "function:put", false},
		{"case sensitive", "Function:get", "function:get", false},
		{"empty granted segment", "a:", "a:x", false},
		{"empty grant", "", "a", false},
		{"star after equal segments", "a:b:*", "a:b:c:d", true},
		{"later segments after star ignored", "a:*:zzz", "a:b:c", true},
		{"requested star is literal", "a:b", "a:*", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ActionMatches(tc.granted, tc.requested); got != tc.want {
				t.Fatalf("ActionMatches(%q, %q) = %v", tc.granted, tc.requested, got)
			}
		})
	}
}

func TestRuleActionGrammar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, action string
		ok           bool
		msg          string // part of the error
	}{
		{"star", "*", true, ""},
		{"prefix star", "function:*", true, ""},
		{"plain", "function:get", true, ""},
		{"one segment", "function", true, ""},
		{"digits, dash and underscore", "my-app_2:do_it-now", true, ""},
		{"upper case is valid, and matches only itself", "FUNCTION:GET", true, ""},
		{"segment after star", "*:get", false, "segments after '*'; '*' matches everything after it, so use '*'"},
		{"segment after inner star", "a:*:b", false, "so use 'a:*'"},
		{"empty", "", false, "must not be empty"},
		{"white space", "fun ction:get", false, "the segment 'fun ction'"},
		{"trailing colon", "function:", false, "empty segment (segment 2)"},
		{"double colon", "function::get", false, "empty segment (segment 2)"},
		{"leading colon", ":get", false, "empty segment (segment 1)"},
		{"star inside a segment", "func*:get", false, "the segment 'func*'"},
		{"slash", "function/get", false, "the segment 'function/get'"},
		{"non-ASCII letter", "fünction:get", false, "may hold only letters"},
		{"control character", "function:get\n", false, "the segment 'get\n'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateAction(tc.action)
			if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ValidateAction(%q) = %v; want ok %v, saying %q", tc.action, err, tc.ok, tc.msg)
			}
		})
	}
}

func TestRuleResourceGrammar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, resource string
		ok             bool
		msg            string
	}{
		{"root", "/", true, ""},
		{"account", "/account/acc-0123456789abcdef/", true, ""},
		{"no slashes: normalized", "account/a", true, ""},
		{"percent stays", "/account/a/issuer/https%3A%2F%2Fidp/", true, ""},
		{"dots inside a segment", "/a/v1.2/..x/x../", true, ""},
		{"non-ASCII", "/account/a/café/", true, ""},
		{"empty", "", false, "must not be empty"},
		{"dot-dot", "/account/../", false, "a '..' segment"},
		{"dot-dot at the end, unnormalized", "/account/a/..", false, "a '..' segment"},
		{"dot", "/account/./a/", false, "a '.' segment"},
		{"lone dot", ".", false, "a '.' segment"},
		{"empty segment", "/account//a/", false, "empty segment"},
		{"double slash", "//", false, "empty segment"},
		{"leading double slash", "//a/", false, "empty segment"},
		{"template", "/account/{{accountId}}/", false, "'{{'"},
		{"space", "/account/a b/", false, "white space"},
		{"tab", "/account/a\tb/", false, "white space"},
		{"newline", "/account/a\n", false, "white space"},
		{"control", "/account/a\x00/", false, "control character"},
		{"DEL", "/account/a\x7f/", false, "control character"},
		{"non-breaking space", "/account/a\u00a0b/", false, "white space"},
		{"invalid UTF-8", "/account/\xff/", false, "not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateResource(tc.resource)
			if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ValidateResource(%q) = %v; want ok %v, saying %q", tc.resource, err, tc.ok, tc.msg)
			}
		})
	}
	// A permission's error names its field.
	if err := ValidatePermission(Permission{Action: "a:", Resource: "/"}); err == nil || !strings.HasPrefix(err.Error(), `"action": `) {
		t.Fatalf("bad action: %v", err)
	}
	if err := ValidatePermission(Permission{Action: "a", Resource: "/../"}); err == nil || !strings.HasPrefix(err.Error(), `"resource": `) {
		t.Fatalf("bad resource: %v", err)
	}
}

// TestGrammarAllocates: validating what is valid costs no allocation, since
// every check does it.
func TestGrammarAllocates(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		_ = ValidateAction("function:get")
		_ = ValidateResource("/account/acc-0123456789abcdef/subscription/sub-0123456789abcdef/function/f/")
	})
	if n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func TestRuleCoverage(t *testing.T) {
	t.Parallel()
	set := []Permission{
		{Action: "function:get", Resource: "/account/a/sub/s1/"},
		{Action: "user:*", Resource: "/account/a/"},
	}
	tests := []struct {
		name, action, resource string
		want                   int // index of the covering grant, -1 for none
	}{
		{"first grant", "function:get", "/account/a/sub/s1/f", 0},
		{"second grant", "user:add", "/account/a/user", 1},
		{"action of one, resource of the other", "function:get", "/account/a/user", -1},
		{"none", "client:add", "/account/a/", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, ok := Covers(set, tc.action, tc.resource)
			if tc.want < 0 {
				if ok {
					t.Fatalf("covered by %+v", g)
				}
				return
			}
			if !ok || g != set[tc.want] {
				t.Fatalf("Covers = %+v, %v; want %+v", g, ok, set[tc.want])
			}
		})
	}
}

func TestRuleInlineNarrowing(t *testing.T) {
	t.Parallel()
	agent := []Permission{{Action: "function:*", Resource: "/account/a/sub/s1/"}}
	tests := []struct {
		name    string
		inline  []Permission
		want    []Permission
		missing string // "" for coverage failures
		ok      bool
	}{
		{"narrower", []Permission{{Action: "function:get", Resource: "account/a/sub/s1/f"}},
			[]Permission{{Action: "function:get", Resource: "/account/a/sub/s1/f/"}}, "", true},
		{"equal", agent, agent, "", true},
		{"empty list grants nothing", []Permission{}, []Permission{}, "", true},
		{"broader action", []Permission{{Action: "*", Resource: "/account/a/sub/s1/"}}, nil, "", false},
		{"broader resource", []Permission{{Action: "function:get", Resource: "/account/a/"}}, nil, "", false},
		{"missing action", []Permission{{Resource: "/account/a/sub/s1/"}}, nil, "action", false},
		{"missing resource", []Permission{{Action: "function:get"}}, nil, "resource", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Narrow(agent, tc.inline)
			if tc.ok {
				if err != nil || len(got) != len(tc.want) {
					t.Fatalf("Narrow = %v, %v", got, err)
				}
				for i := range got {
					if got[i] != tc.want[i] {
						t.Fatalf("Narrow = %v, want %v", got, tc.want)
					}
				}
				return
			}
			var ne *NarrowError
			if !errors.As(err, &ne) || ne.Missing != tc.missing {
				t.Fatalf("Narrow error = %v, want missing %q", err, tc.missing)
			}
		})
	}
}

func TestRuleSecuritySpecs(t *testing.T) {
	t.Parallel()
	perms := []Permission{{Action: "function:get", Resource: "/account/a/sub/s1/"}}
	req := []Permission{{Action: "function:get", Resource: "/account/a/sub/{{sub}}/"}}
	params := map[string]string{"sub": "s1"}
	valid := Caller{Present: true, Valid: true, Permissions: perms}
	invalid := Caller{Present: true, Reason: "token expired"}
	tests := []struct {
		name   string
		spec   SecuritySpec
		caller Caller
		params map[string]string
		status int
		unauth bool
	}{
		{"none allows anyone", SecuritySpec{}, Caller{}, nil, 200, false},
		{"required, no token", SecuritySpec{Authentication: AuthRequired, Authorization: req}, Caller{}, params, 401, false},
		{"required, invalid token", SecuritySpec{Authentication: AuthRequired, Authorization: req}, invalid, params, 401, false},
		{"required, covered", SecuritySpec{Authentication: AuthRequired, Authorization: req}, valid, params, 200, false},
		{"required, template binds elsewhere", SecuritySpec{Authentication: AuthRequired, Authorization: req}, valid, map[string]string{"sub": "s2"}, 403, false},
		{"required, template unbound", SecuritySpec{Authentication: AuthRequired, Authorization: req}, valid, nil, 403, false},
		{"optional, no token passes", SecuritySpec{Authentication: AuthOptional, Authorization: req}, Caller{}, params, 200, true},
		{"optional, invalid token passes", SecuritySpec{Authentication: AuthOptional, Authorization: req}, invalid, params, 200, true},
		{"optional, valid token lacking", SecuritySpec{Authentication: AuthOptional, Authorization: []Permission{{Action: "function:put", Resource: "/"}}}, valid, params, 403, false},
		{"all requirements must be covered", SecuritySpec{Authentication: AuthRequired, Authorization: append(req, Permission{Action: "function:put", Resource: "/account/a/"})}, valid, params, 403, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.spec.Evaluate(tc.caller, tc.params)
			if r.Status != tc.status || r.Allow != (tc.status == 200) || r.Unauthenticated != tc.unauth {
				t.Fatalf("Evaluate = %+v, want status %d unauthenticated %v", r, tc.status, tc.unauth)
			}
		})
	}
}

func TestRuleSecuritySpecValidation(t *testing.T) {
	t.Parallel()
	req := []Permission{{Action: "a", Resource: "/x/{{id}}"}}
	tests := []struct {
		name   string
		spec   SecuritySpec
		params []string
		errs   []string
	}{
		{"none", SecuritySpec{}, nil, nil},
		{"none with authorization", SecuritySpec{Authorization: req}, nil, []string{`"authorization" is not allowed`}},
		{"required without authorization", SecuritySpec{Authentication: AuthRequired}, nil, []string{"at least 1 items"}},
		{"unknown mode", SecuritySpec{Authentication: "maybe"}, nil, []string{`"authentication" must be one of`}},
		{"template names a route parameter", SecuritySpec{Authentication: AuthRequired, Authorization: req}, []string{"id"}, nil},
		{"template names no route parameter", SecuritySpec{Authentication: AuthRequired, Authorization: req}, []string{"other"}, []string{"{{id}}"}},
		{"unclosed template", SecuritySpec{Authentication: AuthOptional, Authorization: []Permission{{Action: "a", Resource: "/x/{{id"}}}, nil, []string{"unclosed"}},
		{"every problem at once", SecuritySpec{Authentication: AuthRequired, Authorization: []Permission{{}}}, nil, []string{`"authorization[0].action" is required`, `"authorization[0].resource" is required`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate(tc.params)
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, want := range tc.errs {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Validate = %v, want it to contain %q", err, want)
				}
			}
		})
	}
	if got, err := ExpandTemplate("/a/{{ x }}/{{y}}", map[string]string{"x": "1", "y": "2"}); err != nil || got != "/a/1/2" {
		t.Fatalf("ExpandTemplate = %q, %v", got, err)
	}
}
