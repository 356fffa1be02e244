package admin

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/sdk/model"
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

// TestRouteTableTest: a request tried against a stored table answers the
// route it matches, its requirements bound and the decision a front door
// enforcing the table makes, decided with the caller's token or the one
// in the body, as `warden routes test` shows it; the call needs
// routes:get and is audited; a bad body is 400 naming the field.
func TestRouteTableTest(t *testing.T) {
	e := newEnv(t)
	accRes := "/account/" + testAcc + "/"
	e.must("PUT", "/v1/account/"+testAcc+"/routes/app", e.rootTk, `{
  "default": "deny",
  "routes": [
    {"name": "fn", "methods": ["GET", "POST"], "path": "/account/{accountId}/fn/{functionId}/{rest...}",
     "security": {"authentication": "required",
       "authorization": [{"action": "function:execute", "resource": "/account/{{accountId}}/fn/{{functionId}}/"}]}},
    {"name": "health", "path": "/health", "security": {"authentication": "none"}},
    {"name": "catalog", "path": "/catalog/", "security": {"authentication": "optional",
       "authorization": [{"action": "function:get", "resource": "`+accRes+`catalog/"}]}},
    {"name": "users", "path": "/users/", "mode": "dry-run", "security": {"authentication": "required",
       "authorization": [{"action": "user:delete", "resource": "`+accRes+`user/"}]}}
  ]
}`)
	e.must("PUT", "/v1/account/"+testAcc+"/routes/open", e.rootTk, `{"default": "allow"}`)
	// bob may test tables and nothing else; alice may run f1; carol may
	// not test tables.
	bob, bobTk := e.agent("user", "bob", perm("routes:get", accRes))
	alice, aliceTk := e.agent("user", "alice", perm("function:execute", accRes+"fn/f1/"))
	_, carolTk := e.agent("user", "carol", perm("function:execute", accRes))
	fn := "/account/" + testAcc + "/fn/f1/run"
	fnReq := []map[string]string{{"action": "function:execute", "resource": accRes + "fn/f1/"}}
	none := []map[string]string{}

	type decision struct {
		Allow  bool              `json:"allow"`
		Status int               `json:"status"`
		Reason string            `json:"reason"`
		Agent  map[string]string `json:"agent"`
	}
	type result struct {
		Method         string              `json:"method"`
		URL            string              `json:"url"`
		Route          string              `json:"route"`
		Path           string              `json:"path"`
		Mode           string              `json:"mode"`
		Authentication string              `json:"authentication"`
		Requirements   []map[string]string `json:"requirements"`
		Let            bool                `json:"let"`
		Decision       decision            `json:"decision"`
	}
	for _, tc := range []struct {
		name, table, caller, body string
		status                    int
		want                      result
		reason, agent, message    string
	}{
		{name: "allowed with the caller's token", table: "app", caller: e.rootTk, body: `{"method":"post","url":"` + fn + `"}`, status: 200,
			want: result{Method: "POST", URL: fn, Route: "fn", Path: "/account/{accountId}/fn/{functionId}/{rest...}", Mode: "enforce",
				Authentication: "required", Requirements: fnReq, Let: true, Decision: decision{Allow: true, Status: 200}},
			reason: "allowed", agent: e.root},
		{name: "denied: the caller's token lacks the grant", table: "app", caller: bobTk, body: `{"method":"GET","url":"` + fn + `"}`, status: 200,
			want: result{Method: "GET", URL: fn, Route: "fn", Path: "/account/{accountId}/fn/{functionId}/{rest...}", Mode: "enforce",
				Authentication: "required", Requirements: fnReq, Decision: decision{Status: 403}},
			reason: "no grant allows 'function:execute'", agent: bob},
		{name: "the token of another agent, in the body", table: "app", caller: bobTk, body: `{"method":"GET","url":"https://app.test` + fn + `?x=1","token":"` + aliceTk + `"}`, status: 200,
			want: result{Method: "GET", URL: "https://app.test" + fn + "?x=1", Route: "fn", Path: "/account/{accountId}/fn/{functionId}/{rest...}", Mode: "enforce",
				Authentication: "required", Requirements: fnReq, Let: true, Decision: decision{Allow: true, Status: 200}},
			reason: "allowed", agent: alice},
		{name: "no token", table: "app", caller: bobTk, body: `{"method":"GET","url":"` + fn + `","token":""}`, status: 200,
			want: result{Method: "GET", URL: fn, Route: "fn", Path: "/account/{accountId}/fn/{functionId}/{rest...}", Mode: "enforce",
				Authentication: "required", Requirements: fnReq, Decision: decision{Status: 401}},
			reason: "missing"},
		{name: "a token that does not verify", table: "app", caller: bobTk, body: `{"method":"GET","url":"` + fn + `","token":"not-a-token"}`, status: 200,
			want: result{Method: "GET", URL: fn, Route: "fn", Path: "/account/{accountId}/fn/{functionId}/{rest...}", Mode: "enforce",
				Authentication: "required", Requirements: fnReq, Decision: decision{Status: 401}}},
		{name: "no route: the default denies", table: "app", caller: bobTk, body: `{"method":"GET","url":"/elsewhere"}`, status: 200,
			want:   result{Method: "GET", URL: "/elsewhere", Route: "default", Mode: "enforce", Requirements: none, Decision: decision{Status: 403}},
			reason: "no route matches; the table's default denies"},
		{name: "no route: the default allows", table: "open", caller: bobTk, body: `{"method":"GET","url":"/elsewhere"}`, status: 200,
			want:   result{Method: "GET", URL: "/elsewhere", Route: "default", Mode: "enforce", Requirements: none, Let: true, Decision: decision{Allow: true, Status: 200}},
			reason: "no route matches; the table's default allows"},
		{name: "authentication none", table: "app", caller: bobTk, body: `{"method":"GET","url":"/health","token":""}`, status: 200,
			want: result{Method: "GET", URL: "/health", Route: "health", Path: "/health", Mode: "enforce", Authentication: "none", Requirements: none, Let: true,
				Decision: decision{Allow: true, Status: 200}},
			reason: "the route requires no authentication"},
		{name: "optional, without a token", table: "app", caller: bobTk, body: `{"method":"GET","url":"/catalog/x","token":""}`, status: 200,
			want: result{Method: "GET", URL: "/catalog/x", Route: "catalog", Path: "/catalog/", Mode: "enforce", Authentication: "optional",
				Requirements: []map[string]string{{"action": "function:get", "resource": accRes + "catalog/"}}, Let: true, Decision: decision{Allow: true, Status: 200}},
			reason: "unauthenticated: "},
		{name: "dry-run: denied, let through", table: "app", caller: bobTk, body: `{"method":"DELETE","url":"/users/u1"}`, status: 200,
			want: result{Method: "DELETE", URL: "/users/u1", Route: "users", Path: "/users/", Mode: "dry-run", Authentication: "required",
				Requirements: []map[string]string{{"action": "user:delete", "resource": accRes + "user/"}}, Let: true, Decision: decision{Status: 403}},
			agent: bob},
		{name: "a path the table refuses", table: "app", caller: bobTk, body: `{"method":"GET","url":"/users/../health"}`, status: 200,
			want:   result{Method: "GET", URL: "/users/../health", Mode: "enforce", Requirements: none, Decision: decision{Status: 400}},
			reason: `the path has a ".." segment`},
		{name: "a missing table", table: "nope", caller: bobTk, body: `{"method":"GET","url":"/"}`, status: 404, message: "The route table 'nope' does not exist"},
		{name: "a caller without routes:get", table: "app", caller: carolTk, body: `{"method":"GET","url":"/"}`, status: 403, message: "Unauthorized"},
		{name: "a caller without a token", table: "app", body: `{"method":"GET","url":"/"}`, status: 403, message: "Unauthorized"},
		{name: "a bad table name", table: "No%20Such", caller: bobTk, body: `{"method":"GET","url":"/"}`, status: 400, message: `"routeTableName" with value "No Such" fails to match`},
		{name: "no method", table: "app", caller: bobTk, body: `{"url":"/"}`, status: 400, message: `"method" is required`},
		{name: "an unknown field", table: "app", caller: bobTk, body: `{"method":"GET","url":"/","host":"x"}`, status: 400, message: `"host" is not allowed`},
		{name: "a URL that is not a path", table: "app", caller: bobTk, body: `{"method":"GET","url":"health"}`, status: 400, message: `"url" must be a path (/…) or an absolute URL, not 'health'`},
		{name: "an absolute URL without a path", table: "app", caller: bobTk, body: `{"method":"GET","url":"http://app.test"}`, status: 400, message: `"url" must be a path`},
		{name: "a method that is not one", table: "app", caller: bobTk, body: `{"method":"GET ME","url":"/"}`, status: 400, message: `"method" must be an HTTP method, not 'GET ME'`},
		{name: "null", table: "app", caller: bobTk, body: `{"method":null,"url":"/","token":null}`, status: 400, message: `"method" must be a string; "token" must be a string`},
		{name: "not an object", table: "app", caller: bobTk, body: `["GET","/"]`, status: 400, message: "not a valid JSON object"},
		{name: "an empty body", table: "app", caller: bobTk, body: ``, status: 400, message: `"method" is required; "url" is required`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/v1/account/"+testAcc+"/routes/"+tc.table+"/test", tc.caller, tc.body)
			if r.status != tc.status {
				t.Fatalf("%d %s; want %d", r.status, r.body, tc.status)
			}
			if tc.status != 200 {
				if !strings.Contains(r.message(), tc.message) {
					t.Fatalf("%s; want %q", r.body, tc.message)
				}
				return
			}
			var got result
			r.json(t, &got)
			reason, agent := got.Decision.Reason, got.Decision.Agent["id"]
			got.Decision.Reason, got.Decision.Agent = "", nil
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got  %+v\nwant %+v\n%s", got, tc.want, r.body)
			}
			if !strings.Contains(reason, tc.reason) || agent != tc.agent {
				t.Errorf("the decision's reason %q and agent %q; want %q and %q", reason, agent, tc.reason, tc.agent)
			}
		})
	}

	// The call is audited as the other admin calls are.
	var page struct{ Items []model.AuditEntry }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		e.must("GET", "/v1/account/"+testAcc+"/audit?action=routes:get&issuerId="+url.QueryEscape(idpIssuer)+"&subject=carol", e.rootTk, "").json(t, &page)
		if len(page.Items) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refused route test is not in the audit log")
		}
	}
	if g := page.Items[0]; g.Resource != accRes+"routes/app/test" || g.Authorized {
		t.Fatalf("the audit entry: %+v", g)
	}
}

// TestRouteTableTestRunsRouteHooks: the route test decides as a front door
// of the node does, so the hooks a route names run: the tenant hook denies
// a token without the account's tenant, where grants alone allow.
func TestRouteTableTestRunsRouteHooks(t *testing.T) {
	e := newEnv(t)
	acc := "/v1/account/" + testAcc
	e.must("PUT", acc+"/hook/tenant", e.rootTk, hookBody(guest(t, "examples/tenant"), `,"actionPrefix":"none:"`))
	e.must("PUT", acc+"/routes/app", e.rootTk, `{"default": "deny", "routes": [
    {"name": "fn", "path": "/fn/", "hooks": ["tenant"], "security": {"authentication": "required",
       "authorization": [{"action": "function:get", "resource": "/account/`+testAcc+`/fn/"}]}}]}`)
	var got struct {
		Hooks    []string       `json:"hooks"`
		Let      bool           `json:"let"`
		Decision model.Decision `json:"decision"`
	}
	e.must("POST", acc+"/routes/app/test", e.rootTk, `{"method":"GET","url":"/fn/x"}`).json(t, &got)
	if got.Let || got.Decision.Status != 403 || !strings.Contains(got.Decision.Reason, `hook "tenant" denied`) || len(got.Hooks) != 1 {
		t.Fatalf("a route whose hook denies: %+v", got)
	}
}
