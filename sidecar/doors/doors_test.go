package doors

import (
	"encoding/json"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/wardenauthz/warden/sidecar/internal/enginetest"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/internal/testkit"
	"github.com/wardenauthz/warden/internal/testkit/contract"
	"github.com/wardenauthz/warden/sidecar/routes"
)

const table = testkit.DoorsTable

// TestForwardAuth: the door's answers for nginx's and Traefik's headers,
// every case of the decision table.
func TestForwardAuth(t *testing.T) {
	w, eng := enginetest.New(t)
	tbl := compile(t, table)
	mux := http.NewServeMux()
	door := New(eng, func() *routes.Table { return tbl }, Options{Registerer: w.Reg})
	door.Register(mux)
	empty := http.NewServeMux()
	New(eng, func() *routes.Table { return nil }, Options{}).Register(empty)

	alice, bob := w.Tok("rsa1", testkit.AliceSub), w.Tok("rsa1", "bob")
	own := "/account/" + testkit.Acc + "/subscription/sub-0000000000000001/fn/f1?x=1"
	nginx := func(method, uri string) map[string]string {
		return map[string]string{"X-Original-Method": method, "X-Original-URI": uri}
	}
	traefik := func(method, uri string) map[string]string {
		return map[string]string{"X-Forwarded-Method": method, "X-Forwarded-Uri": uri, "X-Forwarded-Host": "app.example.com"}
	}
	for _, tc := range []struct {
		name    string
		mux     *http.ServeMux
		headers map[string]string
		token   string
		status  int
		want    map[string]string // response headers
		body    string
	}{
		{"nginx, allowed", mux, nginx("GET", own), alice, 200, map[string]string{HeaderAgentID: testkit.AliceID, HeaderAgentType: "user", HeaderSubject: testkit.AliceSub}, ""},
		{"traefik, allowed", mux, traefik("GET", own), alice, 200, map[string]string{HeaderAgentID: testkit.AliceID}, ""},
		{"no token", mux, nginx("GET", own), "", 401, map[string]string{"WWW-Authenticate": `Bearer realm="warden"`, HeaderAgentID: ""}, "missing bearer token"},
		{"a bad token", mux, nginx("GET", own), "x.y.z", 401, map[string]string{"WWW-Authenticate": `Bearer realm="warden", error="invalid_token"`}, "malformed token"},
		{"forbidden", mux, nginx("GET", own), bob, 403, map[string]string{HeaderAgentID: testkit.BobID}, "no grant allows"},
		{"another method", mux, nginx("POST", own), alice, 403, nil, "no route matches"},
		{"unmatched", mux, nginx("GET", "/elsewhere"), alice, 403, nil, "no route matches"},
		{"a dot segment", mux, nginx("GET", "/account/x/../admin/"), alice, 400, nil, `the path has a \"..\" segment`},
		{"an encoded slash", mux, nginx("GET", "/account/a%2Fb/subscription/s/fn/f"), alice, 400, nil, "encoded '/'"},
		{"dry-run lets a denial through", mux, nginx("DELETE", "/admin/"), bob, 200, map[string]string{HeaderDryRun: "would answer Forbidden: no grant allows 'user:delete' on '/account/" + testkit.Acc + "/user/'"}, ""},
		{"a malformed original URI", mux, nginx("GET", "/account/%zz"), alice, 400, nil, "not validly percent-encoded"},
		{"an original URI without a path", mux, nginx("GET", "account/x"), alice, 400, nil, `does not start with '/'`},
		{"no original URI", mux, map[string]string{"X-Original-Method": "GET"}, alice, 400, nil, "names no original URI"},
		{"no original method", mux, map[string]string{"X-Original-URI": own}, alice, 400, nil, "names no original method"},
		{"no table", empty, nginx("GET", own), alice, 503, nil, "no route table"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/v1/authz/forward", nil)
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		rec := httptest.NewRecorder()
		contract.Wrap(t, tc.mux).ServeHTTP(rec, req)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("%s: %d %s", tc.name, rec.Code, rec.Body)
			continue
		}
		for k, v := range tc.want {
			if got, ok := rec.Header()[http.CanonicalHeaderKey(k)]; !ok || got[0] != v {
				t.Errorf("%s: %s = %q, want %q", tc.name, k, got, v)
			}
		}
	}
}

// TestForwardAuthMetrics: decisions are counted by door, route, mode and
// result, never by path.
func TestForwardAuthMetrics(t *testing.T) {
	w, eng := enginetest.New(t)
	tbl := compile(t, table)
	door := New(eng, func() *routes.Table { return tbl }, Options{Registerer: w.Reg})
	h := door.Envoy(http.NewServeMux())
	alice, bob := w.Tok("rsa1", testkit.AliceSub), w.Tok("rsa1", "bob")
	own := "/account/" + testkit.Acc + "/subscription/sub-0000000000000001/fn/"
	for _, c := range []struct{ path, token string }{
		{own + "f1", alice}, {own + "f2", alice}, {own + "f1", ""}, {"/admin/", bob}, {"/nowhere", alice},
	} {
		req := httptest.NewRequest(http.MethodGet, EnvoyPrefix+c.path, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"envoy", "fn", "enforce", "allow"}, 2},
		{[]string{"envoy", "fn", "enforce", "deny"}, 1},
		{[]string{"envoy", "admin-dry", "dry-run", "let"}, 1},
		{[]string{"envoy", "default", "enforce", "deny"}, 1},
	} {
		if got := testutil.ToFloat64(door.decisions.WithLabelValues(tc.labels...)); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.labels, got, tc.want)
		}
	}
	// The engine counts the dry-run route's denial under its mode, apart
	// from what it enforced.
	want := `
		# HELP warden_decisions_total Checks decided, by result (allow or deny), reason class and mode: enforce, or dry-run for a route table's dry-run routes (counted as decided, though let through).
		# TYPE warden_decisions_total counter
		warden_decisions_total{mode="dry-run",reason="no_grant",result="deny"} 1
		warden_decisions_total{mode="enforce",reason="no_grant",result="deny"} 0
		warden_decisions_total{mode="enforce",reason="granted",result="allow"} 2
		warden_decisions_total{mode="enforce",reason="missing_token",result="deny"} 1
	`
	got, err := testutil.GatherAndCount(w.Reg, "warden_decisions_total")
	if err != nil || got != 11 {
		t.Errorf("warden_decisions_total has %d series (%v), want the engine's 10 classes enforced and 1 dry-run", got, err)
	}
	mfs, err := w.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	text := gathered(mfs, "warden_decisions_total")
	for _, line := range strings.Split(strings.TrimSpace(want), "\n")[2:] {
		if !strings.Contains(text, strings.TrimSpace(line)) {
			t.Errorf("missing %s in\n%s", strings.TrimSpace(line), text)
		}
	}
}

// gathered writes the series of a metric family in the text format.
func gathered(mfs []*dto.MetricFamily, name string) string {
	var b strings.Builder
	for _, mf := range mfs {
		if mf.GetName() == name {
			expfmt.MetricFamilyToText(&b, mf)
		}
	}
	return b.String()
}

// TestForwardAuthSpoofedIdentity: identity headers a client sent itself
// are overwritten in every answer a proxy would copy them from, at forward
// auth and at Envoy's HTTP mode.
func TestForwardAuthSpoofedIdentity(t *testing.T) {
	_, eng := enginetest.New(t)
	tbl := compile(t, "default: allow\n")
	mux := http.NewServeMux()
	door := New(eng, func() *routes.Table { return tbl }, Options{})
	door.Register(mux)
	h := contract.Wrap(t, door.Envoy(mux))
	forward := httptest.NewRequest(http.MethodGet, "/v1/authz/forward", nil)
	forward.Header.Set("X-Original-Method", "GET")
	forward.Header.Set("X-Original-URI", "/anything")
	envoy := httptest.NewRequest(http.MethodGet, EnvoyPrefix+"/anything", nil)
	for name, req := range map[string]*http.Request{"forward auth": forward, "Envoy's HTTP mode": envoy} {
		req.Header.Set(HeaderAgentID, "usr-00000000000000ff")
		req.Header.Set(HeaderSubject, "root")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Header().Get(HeaderAgentID) != "" || rec.Header().Get(HeaderSubject) != "" || len(rec.Header()[HeaderAgentID]) != 1 {
			t.Errorf("%s: %d %v", name, rec.Code, rec.Header())
		}
	}
}

// TestEnvoyHTTP: Envoy's HTTP mode decides the path after the prefix as
// sent, and leaves every other route to the mux.
func TestEnvoyHTTP(t *testing.T) {
	w, eng := enginetest.New(t)
	tbl := compile(t, table)
	mux := http.NewServeMux()
	mux.HandleFunc("/other", func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(http.StatusTeapot) })
	door := New(eng, func() *routes.Table { return tbl }, Options{})
	door.Register(mux)
	h := door.Envoy(mux)
	alice := w.Tok("rsa1", testkit.AliceSub)
	own := "/account/" + testkit.Acc + "/subscription/sub-0000000000000001/fn/f1"
	for _, tc := range []struct {
		name, method, target, token string
		status                      int
		want                        string
	}{
		{"allowed", "GET", EnvoyPrefix + own + "?q=1", alice, 200, ""},
		{"no token", "GET", EnvoyPrefix + own, "", 401, "missing bearer token"},
		{"another method", "POST", EnvoyPrefix + own, alice, 403, "no route matches"},
		{"a dot-dot, not redirected", "GET", EnvoyPrefix + "/account/x/../y", alice, 400, `the path has a \"..\" segment`},
		{"the prefix alone", "GET", EnvoyPrefix, alice, 403, "no route matches"},
		{"a look-alike prefix", "GET", EnvoyPrefix + "x/account", alice, 404, ""},
		{"other routes pass by", "GET", "/other", "", http.StatusTeapot, ""},
	} {
		req := httptest.NewRequest(tc.method, tc.target, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		rec := httptest.NewRecorder()
		if tc.target == "/other" {
			h.ServeHTTP(rec, req) // a route of this test's own
		} else {
			contract.Wrap(t, h).ServeHTTP(rec, req)
		}
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s: %d %s", tc.name, rec.Code, rec.Body)
		}
		if tc.status == 200 && rec.Header().Get(HeaderAgentID) != testkit.AliceID {
			t.Errorf("%s: %v", tc.name, rec.Header())
		}
		if tc.status == 401 && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", tc.name)
		}
	}
}

// compile parses and compiles a route table.
func compile(t testing.TB, text string) *routes.Table {
	t.Helper()
	spec, err := routes.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := routes.Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// TestDoorDecisionLog: the doors log their decisions as the check API
// does, with the door, the route and its mode, and never the token.
func TestDoorDecisionLog(t *testing.T) {
	w, eng := enginetest.New(t)
	tbl := compile(t, table)
	var out testkit.Buffer
	door := New(eng, func() *routes.Table { return tbl }, Options{DecisionLog: "all", Logger: slog.New(slog.NewJSONHandler(&out, nil))})
	h := contract.Wrap(t, door.Envoy(http.NewServeMux()))
	tok := w.Tok("rsa1", "bob")
	req := httptest.NewRequest(http.MethodDelete, EnvoyPrefix+"/admin/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Request-Id", "req-7")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var record map[string]any
	if err := json.Unmarshal([]byte(out.String()), &record); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	for k, v := range map[string]any{"msg": "decision", "call_id": "req-7", "door": "envoy", "route": "admin-dry", "mode": "dry-run",
		"method": "DELETE", "let": true, "allow": false, "status": float64(403), "agent_id": testkit.BobID} {
		if record[k] != v {
			t.Errorf("%s = %v, want %v (%s)", k, record[k], v, out.String())
		}
	}
	if rec.Header().Get("Warden-Call-Id") != "req-7" {
		t.Errorf("call id header: %v", rec.Header())
	}
	for i, part := range strings.Split(tok, ".") {
		if strings.Contains(out.String(), part) {
			t.Fatalf("the log holds part %d of the token", i)
		}
	}
}
