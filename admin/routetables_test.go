package admin

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// appTable is a route table in JSON, as a client PUTs it.
const appTable = `{
  "default": "deny",
  "routes": [
    {"name": "fn", "methods": ["GET", "POST"], "path": "/account/{accountId}/fn/{functionId}/{rest...}",
     "security": {"authentication": "required",
       "authorization": [{"action": "function:execute", "resource": "/account/{{accountId}}/fn/{{functionId}}/"}]}},
    {"name": "health", "path": "/health", "security": {"authentication": "none"}}
  ]
}`

// TestRouteTableLifecycle: a table PUT through the admin API is checked,
// stored, listed, served at once by a node following it, replaced, and
// deleted; a table that does not load never replaces the one serving.
func TestRouteTableLifecycle(t *testing.T) {
	e := newEnv(t)
	path := "/v1/account/" + testAcc + "/routes/app"
	if r := e.do("GET", path, e.rootTk, ""); r.status != 404 || !strings.Contains(r.message(), "The route table 'app' does not exist") {
		t.Fatalf("before: %d %s", r.status, r.body)
	}
	if st := e.routes.Status(); st.Loaded || !strings.Contains(st.Error, "has not been read") && !strings.Contains(st.Error, "is not in the store") {
		t.Fatalf("before, the source says %+v", st)
	}

	r := e.must("PUT", path, e.rootTk, appTable)
	var got struct {
		Name    string            `json:"name"`
		Default json.RawMessage   `json:"default"`
		Routes  []json.RawMessage `json:"routes"`
	}
	r.json(t, &got)
	if got.Name != "app" || string(got.Default) != `"deny"` || len(got.Routes) != 2 {
		t.Fatalf("PUT answered %s", r.body)
	}
	// The write waited for this node's doors: the table serves at once.
	rev := r.revision(t)
	if st := e.routes.Status(); !st.Loaded || st.Routes != 2 || st.Revision != rev || st.Error != "" {
		t.Fatalf("after the PUT at revision %d, the source says %+v", rev, st)
	}
	if m, err := e.routes.Table().Match("GET", "", "/account/"+testAcc+"/fn/f1/x"); err != nil || m.Name() != "fn" ||
		m.Requirements[0].Resource != "/account/"+testAcc+"/fn/f1/" {
		t.Fatalf("the served table matched %+v, %v", m, err)
	}
	g := e.must("GET", path, e.rootTk, "")
	if g.body != r.body {
		t.Fatalf("GET %s; PUT answered %s", g.body, r.body)
	}
	// What GET shows can be PUT back, its name included; another name is
	// refused.
	if back := e.must("PUT", path, e.rootTk, g.body); back.body != r.body {
		t.Fatalf("PUT of what GET showed answered %s", back.body)
	}
	if b := e.do("PUT", path, e.rootTk, strings.Replace(g.body, `"name":"app"`, `"name":"other"`, 1)); b.status != 400 ||
		b.message() != "The route table name in the body 'other' does not match the name in the URL 'app'" {
		t.Fatalf("a body naming another table: %d %s", b.status, b.body)
	}
	rev = e.routes.Status().Revision
	e.must("PUT", "/v1/account/"+testAcc+"/routes/other", e.rootTk, `{"default":"allow"}`)
	if l := e.must("GET", "/v1/account/"+testAcc+"/routes", e.rootTk, ""); strings.TrimSpace(l.body) != `{"items":[{"name":"app","routeCount":2},{"name":"other","routeCount":0}]}` {
		t.Fatalf("list: %s", l.body)
	}
	if l := e.must("GET", "/v1/account/"+testAcc+"/routes?count=1", e.rootTk, ""); !strings.Contains(l.body, `"next":`) {
		t.Fatalf("a page of one: %s", l.body)
	}

	// A bad table is refused, and the one serving stays.
	if b := e.do("PUT", path, e.rootTk, `{"routes":[{"name":"x","path":"no-slash"}]}`); b.status != 400 {
		t.Fatalf("a bad table: %d %s", b.status, b.body)
	}
	if st := e.routes.Status(); !st.Loaded || st.Routes != 2 {
		t.Fatalf("after a refused PUT: %+v", st)
	}
	// A replacement serves at once.
	e.must("PUT", path, e.rootTk, `{"default":"allow","routes":[{"name":"only","path":"/only"}]}`)
	if st := e.routes.Status(); st.Routes != 1 {
		t.Fatalf("after the replacement: %+v", st)
	}

	// Deleted, the table is gone from the API; the doors keep the last
	// one that loaded, and say the table is missing.
	if d := e.do("DELETE", path, e.rootTk, ""); d.status != 204 {
		t.Fatalf("DELETE: %d %s", d.status, d.body)
	}
	if d := e.do("DELETE", path, e.rootTk, ""); d.status != 404 {
		t.Fatalf("DELETE again: %d %s", d.status, d.body)
	}
	if r := e.do("GET", path, e.rootTk, ""); r.status != 404 {
		t.Fatalf("GET after DELETE: %d", r.status)
	}
	if st := e.routes.Status(); !st.Loaded || st.Routes != 1 || !strings.Contains(st.Error, "is not in the store") || st.LoadErrors == 0 {
		t.Fatalf("after the DELETE the source says %+v", st)
	}
}

// TestRouteTableBadInput: every way a table can be wrong gets a 400 naming
// the route and field; nothing is stored.
func TestRouteTableBadInput(t *testing.T) {
	e := newEnv(t)
	path := "/v1/account/" + testAcc + "/routes/app"
	route := func(extra string) string {
		return `{"routes":[{"name":"r1","path":"/a/{id}"` + extra + `}]}`
	}
	big := `{"routes":[{"name":"r1","path":"/a/` + strings.Repeat("x", 1<<20) + `"}]}`
	for _, tc := range []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"conflicting patterns", path, `{"routes":[{"name":"one","path":"/a/{x}"},{"name":"two","path":"/a/{y}"}]}`, 400, `route "two": its pattern "/a/{y}" conflicts with route "one"'s "/a/{x}"`},
		{"a template naming a parameter the pattern lacks", path, route(`,"security":{"authentication":"required","authorization":[{"action":"a:b","resource":"/x/{{nope}}/"}]}`), 400, `route "r1": "security"`},
		{"an unknown key", path, route(`,"colour":"red"`), 400, "colour"},
		{"authorization with authentication none", path, route(`,"security":{"authentication":"none","authorization":[{"action":"a:b","resource":"/x/"}]}`), 400, `route "r1": "security"`},
		{"an unknown hook", path, route(`,"hooks":["tenant"],"security":{"authentication":"optional","authorization":[{"action":"a:b","resource":"/x/"}]}`), 400, `route "r1": "hooks": the account has no hook named "tenant"`},
		{"a hook name that cannot be one", path, route(`,"hooks":["No Such"],"security":{"authentication":"optional","authorization":[{"action":"a:b","resource":"/x/"}]}`), 400, `route "r1": "hooks": "No Such" is not a hook name`},
		{"hooks on a route without authentication", path, route(`,"hooks":["tenant"]`), 400, `route "r1": "hooks": a route with authentication: none decides nothing`},
		{"an invalid method", path, route(`,"methods":["get me"]`), 400, `route "r1": "methods": "get me" is not an HTTP method`},
		{"a bad mode", path, route(`,"mode":"maybe"`), 400, `route "r1": "mode" must be enforce or dry-run`},
		{"a table over the size limit", path, big, 400, "over the limit of 1048576"},
		{"a body far over the limit", path, `{"x":"` + strings.Repeat("x", 2<<20) + `"}`, 413, ""},
		{"an empty body", path, ``, 400, "The route table is empty"},
		{"malformed JSON", path, `{"routes":[`, 400, "the route table"},
		{"a bad table name", "/v1/account/" + testAcc + "/routes/No%20Such", appTable, 400, `"routeTableName" with value "No Such" fails to match`},
		{"a bad default", path, `{"default":"maybe"}`, 400, `"default" must be deny, allow or a security spec`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("PUT", tc.path, e.rootTk, tc.body)
			if r.status != tc.status || !strings.Contains(r.message(), tc.want) {
				t.Fatalf("%d %s; want %d with %q", r.status, truncate(r.body, 300), tc.status, tc.want)
			}
		})
	}
	if r := e.do("GET", "/v1/account/"+testAcc+"/routes", e.rootTk, ""); strings.TrimSpace(r.body) != `{"items":[]}` {
		t.Fatalf("something was stored: %s", r.body)
	}
	// Without the grant, nothing: 403.
	_, tok := e.agent("user", "alice", perm("routes:get", "/account/"+testAcc+"/"))
	if r := e.do("PUT", path, tok, appTable); r.status != 403 {
		t.Fatalf("PUT without routes:put: %d %s", r.status, r.body)
	}
	if r := e.do("GET", path, tok, ""); r.status != 404 {
		t.Fatalf("GET with routes:get: %d %s", r.status, r.body)
	}
	// A table naming a hook the account has is taken.
	if !raceEnabled {
		e.must("PUT", "/v1/account/"+testAcc+"/hook/tenant", e.rootTk, hookBody(guest(t, "examples/tenant"), ""))
		e.must("PUT", path, e.rootTk, route(`,"hooks":["tenant"],"security":{"authentication":"optional","authorization":[{"action":"a:b","resource":"/x/"}]}`))
	}
	// The account's table count is bounded: the first table past the
	// limit is refused, naming it.
	var held struct{ Items []any }
	e.must("GET", "/v1/account/"+testAcc+"/routes", e.rootTk, "").json(t, &held)
	for i := len(held.Items); ; i++ {
		r := e.do("PUT", fmt.Sprintf("/v1/account/%s/routes/t%d", testAcc, i), e.rootTk, `{}`)
		if r.status == 200 {
			continue
		}
		if i != maxRouteTablesPerAccount || r.message() != fmt.Sprintf("The account holds %d route tables, the most it may; remove one before adding 't%d'", i, i) {
			t.Fatalf("table %d: %d %s", i, r.status, r.body)
		}
		break
	}
}
