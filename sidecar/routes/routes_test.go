package routes

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/internal/testkit"
	"github.com/wardenauthz/warden/policywasm"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/internal/enginetest"
	"github.com/wardenauthz/warden/sidecar/storage"
)

const table = `
default: deny
routes:
  - name: get-function
    methods: [GET, POST]
    path: /account/{accountId}/subscription/{subscriptionId}/fn/{fn}
    security:
      authentication: required
      authorization:
        - action: function:get
          resource: /account/{{accountId}}/subscription/{{subscriptionId}}/fn/{{fn}}/
  - name: files
    path: /files/{rest...}
    security:
      authentication: required
      authorization:
        - action: function:get
          resource: /account/` + testkit.Acc + `/subscription/sub-0000000000000001/{{rest}}/
  - name: health
    path: /health/{$}
  - name: catalog
    path: /catalog/
    security:
      authentication: optional
      authorization:
        - action: function:get
          resource: ` + testkit.AliceRes + `
  - name: users-dry
    path: /users/
    mode: dry-run
    security:
      authentication: required
      authorization:
        - action: user:delete
          resource: /account/` + testkit.Acc + `/user/
  - name: api-host
    host: api.example.com
    path: /health/{$}
    security:
      authentication: required
      authorization:
        - action: function:get
          resource: ` + testkit.AliceRes + `
`

func compile(t *testing.T, text string) *Table {
	t.Helper()
	s, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// TestBadTables: every problem is refused with a message naming its route
// and field.
func TestBadTables(t *testing.T) {
	route := func(body string) string { return "routes:\n  - name: r\n" + body }
	for _, tc := range []struct {
		name, text, want string
	}{
		{"unknown key", "routes:\n  - name: r\n    path: /a\n    pth: /b\n", "line 4: field pth not found in a route"},
		{"unknown key of a requirement", route("    path: /a\n    security:\n      authentication: required\n      authorization:\n        - action: a:b\n          resorce: /r/\n"), "field resorce not found in a requirement"},
		{"hooks on a route without authentication", route("    path: /a\n    hooks: [tenant]\n"), `route "r": "hooks": a route with authentication: none decides nothing`},
		{"a hook name that cannot be one", route("    path: /a\n    hooks: [Ten ant]\n    security:\n      authentication: optional\n      authorization:\n        - action: a:b\n          resource: /r/\n"), `route "r": "hooks": "Ten ant" is not a hook name`},
		{"unknown top key", "rutes: []\n", "field rutes not found in a route table"},
		{"template names a missing parameter", route("    path: /a/{x}\n    security:\n      authentication: required\n      authorization:\n        - action: a:b\n          resource: /r/{{y}}/\n"),
			`route "r": "security": "authorization[0].resource" names {{y}}, which is not a parameter of the route`},
		{"authorization with none", route("    path: /a\n    security:\n      authentication: none\n      authorization:\n        - action: a:b\n          resource: /r/\n"),
			`route "r": "security": "authorization" is not allowed when "authentication" is "none"`},
		{"invalid method", route("    path: /a\n    methods: [get]\n"), `route "r": "methods": "get" is not an HTTP method`},
		{"bad mode", route("    path: /a\n    mode: audit\n"), `route "r": "mode" must be enforce or dry-run, not "audit"`},
		{"no name", "routes:\n  - path: /a\n", `route 0: "name" is required`},
		{"same name", "routes:\n  - name: r\n    path: /a\n  - name: r\n    path: /b\n", `route "r": the name is used by another route`},
		{"bad pattern", route("    path: /a/{x\n"), `route "r": "path":`},
		{"relative path", route("    path: a\n"), `route "r": "path": "a" must start with '/'`},
		{"bad default", "default: maybe\n", `"default" must be deny, allow or a security spec`},
		{"every problem at once", "routes:\n  - name: a\n    path: /a\n    mode: x\n  - name: b\n    path: b\n",
			"route \"a\": \"mode\" must be enforce or dry-run, not \"x\"\nroute \"b\": \"path\": \"b\" must start with '/'"},
	} {
		if _, err := Parse([]byte(tc.text)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.want)
		}
	}
	if _, err := Parse([]byte(strings.Repeat(" ", MaxTableSize+1))); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("a table over the size limit: %v", err)
	}
	// Conflicts are found when the table is compiled, naming both routes.
	s, err := Parse([]byte("routes:\n  - name: a\n    path: /x/{id}/b\n  - name: b\n    path: /x/a/{id}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(s); err == nil || !strings.Contains(err.Error(), `route "b": its pattern "/x/a/{id}" conflicts with route "a"'s "/x/{id}/b"`) {
		t.Errorf("conflicting routes: %v", err)
	}
}

// TestMatch: ServeMux's syntax and precedence, hosts, methods, and
// parameters bound into templates.
func TestMatch(t *testing.T) {
	tbl := compile(t, table)
	for _, tc := range []struct {
		method, host, path string
		route              string
		resource           string
		err                string
	}{
		{"GET", "", "/account/acc-1/subscription/sub-1/fn/f1", "get-function", "/account/acc-1/subscription/sub-1/fn/f1/", ""},
		{"POST", "app:8080", "/account/acc-1/subscription/sub-1/fn/f1", "get-function", "/account/acc-1/subscription/sub-1/fn/f1/", ""},
		{"HEAD", "", "/account/acc-1/subscription/sub-1/fn/f1", "get-function", "/account/acc-1/subscription/sub-1/fn/f1/", ""},
		{"DELETE", "", "/account/acc-1/subscription/sub-1/fn/f1", "default", "", ""},
		{"GET", "", "/account/acc-1/subscription/sub-1/fn/f1/more", "default", "", ""},
		{"GET", "", "/health/", "health", "", ""},
		{"GET", "API.Example.com.", "/health/", "api-host", testkit.AliceRes, ""},
		{"GET", "", "/health/x", "default", "", ""},
		{"GET", "", "/catalog/anything/below", "catalog", testkit.AliceRes, ""},
		{"GET", "", "/files/fn1", "files", "/account/" + testkit.Acc + "/subscription/sub-0000000000000001/fn1/", ""},
		{"GET", "", "/files/a/b", "", "", `route "files": the path parameter "rest" carries a '/'`},
		{"GET", "", "/account/acc 1/subscription/s/fn/f", "", "", `route "get-function": the bound resource:`},
	} {
		m, err := tbl.Match(tc.method, tc.host, tc.path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %s: %v; want %q", tc.method, tc.path, err, tc.err)
			}
			continue
		}
		if err != nil || m.Name() != tc.route || tc.resource != "" && (len(m.Requirements) == 0 || m.Requirements[0].Resource != tc.resource) {
			t.Errorf("%s %s%s: %+v %v; want route %s resource %s", tc.method, tc.host, tc.path, m, err, tc.route, tc.resource)
		}
	}
}

// TestCleanPath: percent-decoding happens once, and what an upstream
// could read otherwise than the table is refused.
func TestCleanPath(t *testing.T) {
	for _, tc := range []struct{ uri, path, err string }{
		{"/a/b?x=1", "/a/b", ""},
		{"/a%20b/", "/a b/", ""},
		{"http://app/a/b", "/a/b", ""},
		{"/a/%252e%252e/b", "/a/%2e%2e/b", ""}, // decoded once: no dot segment
		{"/a/../b", "", `a ".." segment`},
		{"/a/%2e%2e/b", "", `a ".." segment`},
		{"/a/./b", "", `a "." segment`},
		{"/a/%2F/b", "", "encoded '/'"},
		{"/a/%2f", "", "encoded '/'"},
		{"//a", "", "empty segment"},
		{"/a//b", "", "empty segment"},
		{"/admin;x=1/", "", "a ';'"},
		{"/a\\b", "", "backslash"},
		{"/a%00b", "", "control character"},
		{"/a%zz", "", "not validly percent-encoded"},
		{"a/b", "", "does not start with '/'"},
		{"", "", "empty"},
	} {
		got, err := CleanPath(tc.uri)
		if tc.err == "" && (err != nil || got != tc.path) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("CleanPath(%q) = %q, %v; want %q / %q", tc.uri, got, err, tc.path, tc.err)
		}
	}
}

// TestDecide: every case of the decision table, through the engine.
func TestDecide(t *testing.T) {
	w, eng := enginetest.New(t)
	tbl := compile(t, table)
	alice, carol := w.Tok("rsa1", testkit.AliceSub), w.Tok("rsa1", "carol")
	own := "/account/" + testkit.Acc + "/subscription/sub-0000000000000001/fn/f1"
	other := "/account/" + testkit.OtherAcc + "/subscription/sub-0000000000000001/fn/f1"
	for _, tc := range []struct {
		name, method, uri, token string
		let                      bool
		status                   int
		route, reason            string
		dryRun, unauth           bool
	}{
		{"no token", "GET", own, "", false, 401, "get-function", "missing bearer token", false, false},
		{"a bad token", "GET", own, "not-a-jwt", false, 401, "get-function", "malformed token", false, false},
		{"allowed", "GET", own, alice, true, 200, "get-function", "allowed", false, false},
		{"another tenant's function", "GET", other, alice, false, 401, "get-function", "unknown issuer", false, false},
		{"a grant that does not cover it", "GET", own, w.Tok("rsa1", "bob"), false, 403, "get-function", "no grant allows", false, false},
		{"unmatched", "GET", "/nowhere", alice, false, 403, "default", "no route matches", false, false},
		{"no authentication", "GET", "/health/", "", true, 200, "health", "requires no authentication", false, false},
		{"optional without a token", "GET", "/catalog/x", "", true, 200, "catalog", "unauthenticated: missing bearer token", false, true},
		{"optional with a token", "GET", "/catalog/x", alice, true, 200, "catalog", "allowed", false, false},
		{"optional with a token lacking the grant", "GET", "/catalog/x", w.Tok("rsa1", "bob"), false, 403, "catalog", "no grant allows", false, false},
		{"dry-run denial is let through", "DELETE", "/users/", w.Tok("rsa1", "bob"), true, 403, "users-dry", "no grant allows 'user:delete'", true, false},
		{"dry-run allowed", "DELETE", "/users/", carol, true, 200, "users-dry", "allowed", false, false},
	} {
		o, err := tbl.Decide(context.Background(), eng, Request{Method: tc.method, URI: tc.uri, Token: tc.token})
		if err != nil || o.Let() != tc.let || o.Status != tc.status || o.Route != tc.route || !strings.Contains(o.Reason, tc.reason) ||
			o.DryRun != tc.dryRun || o.Unauthenticated != tc.unauth {
			t.Errorf("%s: %+v, %v", tc.name, o, err)
		}
	}
	for _, tc := range []struct {
		uri   string
		class sidecar.ReasonClass
	}{{"/nowhere", sidecar.ClassNoRoute}, {"/health/", sidecar.ClassOpenRoute}, {"/catalog/x", sidecar.ClassOpenRoute}, {own, sidecar.ClassMissingToken}} {
		if o, _ := tbl.Decide(context.Background(), eng, Request{Method: "GET", URI: tc.uri}); o.Class != tc.class || o.Class.Allows() != o.Allow {
			t.Errorf("%s: class %v (allow %v), want %v", tc.uri, o.Class, o.Allow, tc.class)
		}
	}
	if o, err := tbl.Decide(context.Background(), eng, Request{Method: "GET", URI: "/a/../health/", Token: alice}); err == nil {
		t.Errorf("a dot segment was decided: %+v", o)
	}
	if o, _ := tbl.Decide(context.Background(), eng, Request{Method: "GET", URI: own, Token: alice}); o.Subject != testkit.AliceSub || o.Agent.ID != testkit.AliceID {
		t.Errorf("the allowed outcome names no subject or agent: %+v", o)
	}
	allow := compile(t, "default: allow\n")
	if o, err := allow.Decide(context.Background(), eng, Request{Method: "GET", URI: "/x"}); err != nil || !o.Let() || o.Route != "default" {
		t.Errorf("default allow: %+v, %v", o, err)
	}
}

// TestStoreSource: the table of the store serves once given, a version
// that does not load keeps the one serving, a deletion too, and
// WaitRevision follows the revisions given.
func TestStoreSource(t *testing.T) {
	layout := storage.NewLayout("")
	s := NewStoreSource(layout, "acc-1", "app", slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	key := layout.RouteTable("acc-1", "app")
	wait := func(rev int64) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := s.WaitRevision(wctx, rev); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Status(); st.Loaded || s.Table() != nil {
		t.Fatalf("before anything: %+v", st)
	}
	s.Reset(5, []storage.Record{{Key: layout.RouteTable("acc-1", "other"), Value: []byte(`{}`), Revision: 4}})
	wait(5)
	if st := s.Status(); st.Loaded || !strings.Contains(st.Error, "the route table acc-1/app is not in the store") {
		t.Fatalf("without the table: %+v", st)
	}
	s.Advance(6, []storage.Record{{Key: key, Value: []byte(`{"routes":[{"name":"a","path":"/a"}]}`), Revision: 6}})
	wait(6)
	if st := s.Status(); !st.Loaded || st.Routes != 1 || st.Revision != 6 || st.Error != "" {
		t.Fatalf("given the table: %+v", st)
	}
	served := s.Table()
	// A relist that gives the version serving changes nothing.
	s.Reset(7, []storage.Record{{Key: key, Value: []byte(`{"routes":[{"name":"a","path":"/a"}]}`), Revision: 6}})
	wait(7)
	if s.Table() != served || s.Status().LoadErrors != 1 {
		t.Fatalf("a relist of the version serving reloaded it: %+v", s.Status())
	}
	s.Advance(8, []storage.Record{{Key: key, Value: []byte(`{"routes":[{"name":"a","path":"a"}]}`), Revision: 8}})
	wait(8)
	if st := s.Status(); s.Table() != served || !strings.Contains(st.Error, "at revision 8") || st.LoadErrors != 2 {
		t.Fatalf("given a bad version: %+v", st)
	}
	s.Advance(9, nil) // other kinds changed
	wait(9)
	s.Advance(10, []storage.Record{{Key: key, Deleted: true, Revision: 10}})
	wait(10)
	if st := s.Status(); s.Table() != served || !strings.Contains(st.Error, "is not in the store") {
		t.Fatalf("deleted: %+v", st)
	}
	short, cancelShort := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancelShort()
	if err := s.WaitRevision(short, 11); err == nil || !strings.Contains(err.Error(), "has not caught up with revision 11") {
		t.Fatalf("waiting for a revision not given: %v", err)
	}
}

// TestDefaultJSON: a table's default reads and writes as JSON as it does
// as YAML.
func TestDefaultJSON(t *testing.T) {
	for _, in := range []string{`"deny"`, `"allow"`, `{"authentication":"required","authorization":[{"action":"a:b","resource":"/x/"}]}`} {
		var d Default
		if err := json.Unmarshal([]byte(in), &d); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		out, err := json.Marshal(d)
		if err != nil || string(out) != in {
			t.Fatalf("%s came back as %s, %v", in, out, err)
		}
	}
	var d Default
	if err := json.Unmarshal([]byte(`"maybe"`), &d); err == nil || !strings.Contains(err.Error(), `not "maybe"`) {
		t.Fatalf("a bad default: %v", err)
	}
}

// TestDecideRouteHooks: the hooks a route names run on its decisions; on
// an optional route without a valid token they run alone, over a pass,
// able to deny it; one that is not attached denies.
func TestDecideRouteHooks(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles two hook modules")
	}
	w, eng := enginetest.New(t)
	rt, err := policywasm.NewRuntime(context.Background(), policywasm.Config{PoolSize: 1, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	tenant := testkit.LoadHook(t, rt, "examples/tenant")
	allow := testkit.LoadHook(t, rt, "testdata/guests/allow")
	tbl := compile(t, `
routes:
  - name: opt-allow
    path: /opt/allow
    hooks: [allow]
    security: {authentication: optional, authorization: [{action: "function:get", resource: "/account/`+testkit.Acc+`/subscription/sub-0000000000000001/"}]}
  - name: opt-tenant
    path: /opt/tenant
    hooks: [tenant]
    security: {authentication: optional, authorization: [{action: "function:get", resource: "/account/`+testkit.Acc+`/subscription/sub-0000000000000001/"}]}
  - name: opt-ghost
    path: /opt/ghost
    hooks: [ghost]
    security: {authentication: optional, authorization: [{action: "function:get", resource: "/account/`+testkit.Acc+`/subscription/sub-0000000000000001/"}]}
  - name: req-tenant
    path: /req/tenant
    hooks: [tenant]
    security: {authentication: required, authorization: [{action: "function:get", resource: "/account/`+testkit.Acc+`/subscription/sub-0000000000000001/"}]}
`)
	alice := w.Tok("rsa1", testkit.AliceSub)
	// tenant is attached for user: actions only: it runs on the routes
	// naming it, never by its prefix here.
	if _, err := eng.SetHooks([]sidecar.AttachedHook{{Hook: tenant, Name: "tenant", ActionPrefix: "user:"}, {Hook: allow, Name: "allow", ActionPrefix: "function:"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, uri, token string
		let, unauth      bool
		status           int
		reason           string
	}{
		{"optional, no token, the route's hook allows", "/opt/allow", "", true, true, 200, "unauthenticated: missing bearer token"},
		{"optional, no token, the route's hook denies", "/opt/tenant", "", false, false, 403, `hook "tenant" denied`},
		{"optional, no token, the route's hook is not attached", "/opt/ghost", "", false, false, 403, `the route names hook "ghost", which is not attached`},
		{"optional, a valid token, the route's hook denies", "/opt/tenant", alice, false, false, 403, `hook "tenant" denied`},
		{"required, the route's hook denies", "/req/tenant", alice, false, false, 403, `hook "tenant" denied`},
		{"required, no token: 401 stays", "/req/tenant", "", false, false, 401, "missing bearer token"},
	} {
		o, err := tbl.Decide(context.Background(), eng, Request{Method: "GET", URI: tc.uri, Token: tc.token})
		if err != nil || o.Let() != tc.let || o.Unauthenticated != tc.unauth || o.Status != tc.status || !strings.Contains(o.Reason, tc.reason) {
			t.Errorf("%s: %+v, %v", tc.name, o, err)
		}
	}
	// Prefix hooks do not run on an unauthenticated pass: tenant, attached
	// for every action, would deny it.
	if _, err := eng.SetHooks([]sidecar.AttachedHook{{Hook: tenant, Name: "tenant"}, {Hook: allow, Name: "allow"}}); err != nil {
		t.Fatal(err)
	}
	if o, _ := tbl.Decide(context.Background(), eng, Request{Method: "GET", URI: "/opt/allow"}); !o.Let() || !o.Unauthenticated {
		t.Errorf("an account-wide hook ran on an unauthenticated pass: %+v", o)
	}
}
