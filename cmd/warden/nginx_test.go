package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenauthz/warden/sdk/model"
)

// nginxConf puts nginx on a unix socket in front of an upstream, asking
// Warden's forward-auth door about every request, and passing the
// identity headers it answers to the upstream (over what the client sent).
const nginxConf = `daemon off;
master_process off;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log;
events {}
http {
  access_log off;
  client_body_temp_path {{dir}}/tmp;
  proxy_temp_path {{dir}}/tmp;
  fastcgi_temp_path {{dir}}/tmp;
  uwsgi_temp_path {{dir}}/tmp;
  scgi_temp_path {{dir}}/tmp;
  server {
    listen unix:{{dir}}/nginx.sock;
    location = /_warden {
      internal;
      proxy_pass http://{{warden}}/v1/authz/forward;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Original-URI $request_uri;
    }
    location / {
      auth_request /_warden;
      auth_request_set $warden_agent $upstream_http_x_warden_agent_id;
      auth_request_set $warden_subject $upstream_http_x_warden_subject;
      proxy_set_header X-Warden-Agent-Id $warden_agent;
      proxy_set_header X-Warden-Subject $warden_subject;
      proxy_pass http://{{upstream}};
    }
  }
}
`

// TestNginxForwardAuth: real nginx with auth_request in front of an app,
// Warden deciding every request through its route table: every case of
// the decision table end to end, the path bypasses, and spoofed identity
// headers. A request Warden refuses never reaches the app.
func TestNginxForwardAuth(t *testing.T) {
	integration(t)
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if nginx, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Skip("no nginx binary (.ci/run installs Debian's nginx-light)")
		}
	}
	dir := t.TempDir()
	acc := model.NewID(model.AccountPrefix)
	fn := "/account/" + acc + "/subscription/sub-0000000000000001/fn/f1"
	routesFile := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(routesFile, []byte(`
routes:
  - name: fn
    methods: [GET]
    path: /account/{acc}/subscription/{sub}/fn/{fn}
    security:
      authentication: required
      authorization:
        - action: function:get
          resource: /account/{{acc}}/subscription/{{sub}}/fn/{{fn}}/
  - name: reports
    path: /reports/
    mode: dry-run
    security:
      authentication: required
      authorization:
        - action: report:get
          resource: /account/`+acc+`/report/
`), 0o600); err != nil {
		t.Fatal(err)
	}
	root := newRootKey(t)
	w := startWarden(t, "warden", filepath.Join(dir, "data"), append(root.bootstrapFlags(t, dir), "--account", acc, "--routes", routesFile)...)
	w.waitReady(t, 0)
	rootTok := root.token(t, w.base)
	alice := newAgentKey(t, "https://idp.test", "alice", "k1")
	addIssuer(t, w, rootTok, acc, alice)
	var aliceUser struct{ ID string }
	w.mustCall(t, http.MethodPost, "/v1/account/"+acc+"/user", rootTok,
		userBody("Alice", alice, "function:get", "/account/"+acc+"/subscription/sub-0000000000000001/"), &aliceUser)
	aliceTok := alice.token(t, w.base)

	var reached atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		fmt.Fprintf(rw, "agent=%s subject=%s", r.Header.Get("X-Warden-Agent-Id"), r.Header.Get("X-Warden-Subject"))
	}))
	defer app.Close()
	conf := strings.NewReplacer("{{dir}}", dir, "{{warden}}", w.listen, "{{upstream}}", strings.TrimPrefix(app.URL, "http://")).Replace(nginxConf)
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(nginx, "-t", "-p", dir, "-c", confFile).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	startProc(t, "nginx", nginx, "-p", dir, "-c", confFile)
	sock := filepath.Join(dir, "nginx.sock")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	eventually(t, 10*time.Second, "nginx listens", func() (bool, string) {
		_, err := os.Stat(sock)
		return err == nil, fmt.Sprint(err)
	})

	for _, tc := range []struct {
		name, method, path, token string
		header                    map[string]string
		status                    int
		body                      string // what the app answered; "" when it must not be reached
	}{
		{"no token", "GET", fn, "", nil, 401, ""},
		{"a bad token", "GET", fn, "x.y.z", nil, 401, ""},
		{"allowed", "GET", fn, aliceTok, nil, 200, "agent=" + aliceUser.ID + " subject=alice"},
		{"spoofed identity headers", "GET", fn, aliceTok, map[string]string{"X-Warden-Agent-Id": "usr-00000000000000ff", "X-Warden-Subject": "root"}, 200, "agent=" + aliceUser.ID + " subject=alice"},
		{"spoofed, without a token", "GET", fn, "", map[string]string{"X-Warden-Agent-Id": "usr-00000000000000ff"}, 401, ""},
		{"another tenant's function", "GET", "/account/acc-00000000000000ff/subscription/sub-0000000000000001/fn/f1", aliceTok, nil, 401, ""},
		{"another method", "POST", fn, aliceTok, nil, 403, ""},
		{"an unmatched route", "GET", "/elsewhere", aliceTok, nil, 403, ""},
		{"dry-run lets a denial through", "GET", "/reports/", aliceTok, nil, 200, "agent=" + aliceUser.ID + " subject=alice"},
		{"case", "GET", strings.ToUpper(fn[:8]) + fn[8:], aliceTok, nil, 403, ""},
		{"a dot-dot segment", "GET", "/account/" + acc + "/x/../subscription/sub-0000000000000001/fn/f1", aliceTok, nil, 500, ""},
		{"an encoded dot-dot", "GET", "/account/" + acc + "/x/%2e%2e/subscription/sub-0000000000000001/fn/f1", aliceTok, nil, 500, ""},
		{"a double slash", "GET", "/account/" + acc + "//subscription/sub-0000000000000001/fn/f1", aliceTok, nil, 500, ""},
		{"an encoded slash", "GET", "/account/" + acc + "/subscription/sub-0000000000000001/fn/f1%2Fx", aliceTok, nil, 500, ""},
		{"a semicolon", "GET", fn + ";jsessionid=1", aliceTok, nil, 500, ""},
	} {
		before := reached.Load()
		req, _ := http.NewRequest(tc.method, "http://nginx"+tc.path, nil)
		req.URL.Opaque = tc.path // sent as written, not cleaned
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, resp.StatusCode, tc.status, body)
		}
		switch {
		case tc.body == "" && reached.Load() != before:
			t.Errorf("%s: the app was reached", tc.name)
		case tc.body != "" && string(body) != tc.body:
			t.Errorf("%s: the app answered %q, want %q", tc.name, body, tc.body)
		}
		if tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="warden"`) {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
}
