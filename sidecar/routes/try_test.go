package routes

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/internal/testkit"
	"github.com/wardenauthz/warden/sdk/model"
)

// TestTry: a request tried against a table names its route, its bound
// requirements and the decision a door enforces; the decider is asked
// only for routes that authenticate, an optional route's 401 is allowed,
// a dry-run route is let through, and a path the table refuses is
// decided 400.
func TestTry(t *testing.T) {
	tbl := compile(t, table)
	open := compile(t, "default: allow\n")
	fnRes := "/account/" + testkit.Acc + "/subscription/sub-1/fn/f1/"
	allow := model.Decision{Allow: true, Status: 200, Reason: "allowed", Revision: 7}
	for _, tc := range []struct {
		name           string
		tbl            *Table
		method, target string
		answer         model.Decision
		want           Test
		asked          []model.Permission
	}{
		{name: "a route that requires a token", tbl: tbl, method: "GET", target: "/account/" + testkit.Acc + "/subscription/sub-1/fn/f1",
			answer: allow, asked: []model.Permission{{Action: "function:get", Resource: fnRes}},
			want: Test{Route: "get-function", Path: "/account/{accountId}/subscription/{subscriptionId}/fn/{fn}", Mode: ModeEnforce,
				Authentication: model.AuthRequired, Requirements: []model.Permission{{Action: "function:get", Resource: fnRes}}, Let: true, Decision: allow}},
		{name: "an absolute URL and its query", tbl: tbl, method: "POST", target: "https://app.test/account/" + testkit.Acc + "/subscription/sub-1/fn/f1?x=1",
			answer: model.Decision{Status: 403, Reason: "no grant", Revision: 7}, asked: []model.Permission{{Action: "function:get", Resource: fnRes}},
			want: Test{Route: "get-function", Path: "/account/{accountId}/subscription/{subscriptionId}/fn/{fn}", Mode: ModeEnforce,
				Authentication: model.AuthRequired, Requirements: []model.Permission{{Action: "function:get", Resource: fnRes}},
				Decision: model.Decision{Status: 403, Reason: "no grant", Revision: 7}}},
		{name: "the route of a host", tbl: tbl, method: "GET", target: "http://API.example.com:8080/health/", answer: allow,
			asked: []model.Permission{{Action: "function:get", Resource: testkit.AliceRes}},
			want: Test{Route: "api-host", Path: "/health/{$}", Mode: ModeEnforce, Authentication: model.AuthRequired,
				Requirements: []model.Permission{{Action: "function:get", Resource: testkit.AliceRes}}, Let: true, Decision: allow}},
		{name: "authentication none", tbl: tbl, method: "GET", target: "/health/",
			want: Test{Route: "health", Path: "/health/{$}", Mode: ModeEnforce, Authentication: model.AuthNone, Requirements: []model.Permission{}, Let: true,
				Decision: model.Decision{Allow: true, Status: 200, Reason: "the route requires no authentication"}}},
		{name: "optional, without a valid token", tbl: tbl, method: "GET", target: "/catalog/x",
			answer: model.Decision{Status: 401, Reason: "missing bearer token", Revision: 7}, asked: []model.Permission{{Action: "function:get", Resource: testkit.AliceRes}},
			want: Test{Route: "catalog", Path: "/catalog/", Mode: ModeEnforce, Authentication: model.AuthOptional,
				Requirements: []model.Permission{{Action: "function:get", Resource: testkit.AliceRes}}, Let: true,
				Decision: model.Decision{Allow: true, Status: 200, Reason: "unauthenticated: missing bearer token", Revision: 7}}},
		{name: "dry-run, denied and let through", tbl: tbl, method: "DELETE", target: "/users/u1",
			answer: model.Decision{Status: 401, Reason: "missing bearer token", Revision: 7}, asked: []model.Permission{{Action: "user:delete", Resource: "/account/" + testkit.Acc + "/user/"}},
			want: Test{Route: "users-dry", Path: "/users/", Mode: ModeDryRun, Authentication: model.AuthRequired,
				Requirements: []model.Permission{{Action: "user:delete", Resource: "/account/" + testkit.Acc + "/user/"}}, Let: true,
				Decision: model.Decision{Status: 401, Reason: "missing bearer token", Revision: 7}}},
		{name: "no route, the default denies", tbl: tbl, method: "GET", target: "/elsewhere",
			want: Test{Route: "default", Mode: ModeEnforce, Requirements: []model.Permission{},
				Decision: model.Decision{Status: 403, Reason: "no route matches; the table's default denies"}}},
		{name: "no route, the default allows", tbl: open, method: "GET", target: "/elsewhere",
			want: Test{Route: "default", Mode: ModeEnforce, Requirements: []model.Permission{}, Let: true,
				Decision: model.Decision{Allow: true, Status: 200, Reason: "no route matches; the table's default allows"}}},
		{name: "a path the table refuses", tbl: tbl, method: "GET", target: "/users/../health/",
			want: Test{Mode: ModeEnforce, Requirements: []model.Permission{}, Decision: model.Decision{Status: 400, Reason: `the path has a ".." segment`}}},
		{name: "a parameter a template refuses", tbl: tbl, method: "GET", target: "/files/a/b",
			want: Test{Mode: ModeEnforce, Requirements: []model.Permission{}, Decision: model.Decision{Status: 400,
				Reason: `route "files": the path parameter "rest" carries a '/', which a resource template does not take`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked []model.Permission
			got, err := tc.tbl.Try(tc.method, tc.target, func(reqs []model.Permission) (model.Decision, error) {
				asked = reqs
				return tc.answer, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Method, tc.want.URL = tc.method, tc.target
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if !reflect.DeepEqual(asked, tc.asked) {
				t.Errorf("the decider was asked %v; want %v", asked, tc.asked)
			}
		})
	}
	for _, bad := range []string{"relative/path", "http://host", "%zz", ""} {
		if _, err := tbl.Try("GET", bad, nil); err == nil || !strings.Contains(err.Error(), "must be a path") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	failed := errors.New("the store is down")
	if _, err := tbl.Try("GET", "/catalog/", func([]model.Permission) (model.Decision, error) { return model.Decision{}, failed }); !errors.Is(err, failed) {
		t.Errorf("a decider's error: %v", err)
	}
	for m, ok := range map[string]bool{"GET": true, "M-SEARCH": true, "get": false, "GET ME": false, "": false} {
		if ValidMethod(m) != ok {
			t.Errorf("ValidMethod(%q) = %v", m, !ok)
		}
	}
}
