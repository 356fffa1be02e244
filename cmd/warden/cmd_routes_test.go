package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIRoutes: warden routes put, ls, get, test and rm against an
// in-process deployment, and a clear exit for each mistake.
func TestCLIRoutes(t *testing.T) {
	c, d := cliWithRoot(t)
	file := filepath.Join(c.dir, "routes.yaml")
	text := `default: deny
routes:
  - name: fn
    methods: [GET, POST]
    path: /account/{accountId}/fn/{fn}/{rest...}
    security:
      authentication: required
      authorization:
        - action: function:execute
          resource: /account/{{accountId}}/fn/{{fn}}/
  - name: health
    path: /health
  - name: admin
    path: /admin/
    mode: dry-run
    security:
      authentication: required
      authorization:
        - action: user:delete
          resource: /account/acc-0000000000000000/user/
  - name: opt
    path: /opt
    security:
      authentication: optional
      authorization:
        - action: user:get
          resource: /account/acc-0000000000000000/user/
`
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := c.must("routes", "put", "app", file); !strings.Contains(out, "Route table 'app' stored: 4 routes (revision ") {
		t.Fatalf("put: %q", out)
	}
	if out := c.must("routes", "ls"); !strings.Contains(out, "app") || !strings.Contains(out, "4") {
		t.Fatalf("ls: %q", out)
	}
	if out := c.must("routes", "get", "app"); !strings.Contains(out, "# route table app") || !strings.Contains(out, "path: /account/{accountId}/fn/{fn}/{rest...}") || !strings.Contains(out, "default: deny") {
		t.Fatalf("get: %q", out)
	}
	var got struct {
		Name   string `json:"name"`
		Routes []struct {
			Name string `json:"name"`
		} `json:"routes"`
	}
	if err := json.Unmarshal([]byte(c.must("routes", "get", "app", "-o", "json")), &got); err != nil || got.Name != "app" || len(got.Routes) != 4 {
		t.Fatalf("get -o json: %+v %v", got, err)
	}

	root := strings.TrimSpace(c.must("token", "-o", "raw"))
	own := "/account/" + d.Account + "/fn/f1/run?x=1"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"allowed", []string{"app", "GET", "https://app.example.com" + own, "--token", root}, exitOK,
			[]string{"route:        fn (enforce), path /account/{accountId}/fn/{fn}/{rest...}", "requirements: function:execute on /account/" + d.Account + "/fn/f1/", "decision:     allowed (200)"}},
		{"no token", []string{"app", "POST", own}, exitDenied, []string{"auth:         required", "decision:     denied (401): missing bearer token"}},
		{"an open route", []string{"--file", file, "GET", "/health"}, exitOK, []string{"route:        health", "the route requires no authentication"}},
		{"unmatched", []string{"--file", file, "GET", "/nowhere"}, exitDenied, []string{"none matches", "the table's default denies"}},
		{"dry-run lets a denial through", []string{"--file", file, "DELETE", "/admin/x", "--token", root}, exitOK,
			[]string{"admin (dry-run)", "decision:     denied (401)", "let through: the route is in dry-run mode"}},
		{"optional without a token", []string{"app", "GET", "/opt", "--token", ""}, exitOK, []string{"decision:     allowed (200): unauthenticated: missing bearer token"}},
		{"a dot-dot path", []string{"--file", file, "GET", "/account/a/../fn/x/"}, exitDenied, []string{`refused (400): the path has a ".." segment`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.run(append([]string{"routes", "test"}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %+v", r.code, tc.code, r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout+r.stderr, w) {
					t.Errorf("no %q in\n%s%s", w, r.stdout, r.stderr)
				}
			}
		})
	}
	var res struct {
		Route        string `json:"route"`
		Let          bool   `json:"let"`
		Requirements []struct{ Action, Resource string }
		Decision     struct {
			Allow  bool `json:"allow"`
			Status int  `json:"status"`
		} `json:"decision"`
	}
	if err := json.Unmarshal([]byte(c.must("routes", "test", "app", "GET", own, "--token", root, "-o", "json")), &res); err != nil ||
		res.Route != "fn" || !res.Let || !res.Decision.Allow || len(res.Requirements) != 1 {
		t.Fatalf("test -o json: %+v %v", res, err)
	}

	bad := filepath.Join(c.dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("routes:\n  - name: x\n    path: /a/{id}\n  - name: y\n    path: /a/{other}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"routes", "put", "app", filepath.Join(c.dir, "missing.yaml")}, exitUsage, "reading the route table"},
		{[]string{"routes", "put", "app", bad}, exitUsage, `route "y": its pattern "/a/{other}" conflicts with route "x"`},
		{[]string{"routes", "put", "Bad!", file}, exitUsage, `the route table name "Bad!" must match`},
		{[]string{"routes", "get", "nope"}, exitNotFound, "The route table 'nope' does not exist"},
		{[]string{"routes", "test", "GET", "/x"}, exitUsage, "give the table's NAME, or --file FILE, then METHOD URL"},
		{[]string{"routes", "test", "--file", file, "app", "GET", "/x"}, exitUsage, "with --file, give METHOD URL"},
		{[]string{"routes", "test", "--file", file, "GET", "x y"}, exitUsage, "must be a path"},
		{[]string{"routes", "list"}, exitUsage, `unknown subcommand "list"`},
	} {
		if r := c.run(tc.args...); r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("warden %v: %+v; want exit %d with %q", tc.args, r, tc.code, tc.msg)
		}
	}
	if out := c.must("routes", "rm", "app"); !strings.Contains(out, "Route table 'app' removed.") {
		t.Fatalf("rm: %q", out)
	}
	if r := c.run("routes", "rm", "app"); r.code != exitNotFound {
		t.Fatalf("rm again: %+v", r)
	}
}
