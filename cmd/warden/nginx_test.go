package main

import (
	"context"
	"fmt"
	"github.com/wardenauthz/warden/internal/testkit"
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

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/wardenauthz/warden/sdk/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"gopkg.in/yaml.v3"
)

// nginxWrap runs docs/proxies.md's server block in the foreground, with
// its files in the test's directory.
const nginxWrap = `daemon off;
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
{{server}}
}
`

// docBlock returns the first code block of a language in a doc of the
// repository, so that tests run the configurations users copy.
func docBlock(t *testing.T, doc, lang string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", doc))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "```"+lang+"\n")
	if !ok {
		t.Fatalf("%s has no %s block", doc, lang)
	}
	block, _, _ := strings.Cut(rest, "```")
	return block
}

// proxyWorld is Warden with a route table, an account with alice (who
// may get one subscription's functions), and an app that says whom it was
// asked by, counting the requests that reach it.
type proxyWorld struct {
	w                 *wardenProc
	dir, acc, fn      string
	aliceTok, aliceID string
	app               string // the app's host:port
	reached           *atomic.Int64
}

func newProxyWorld(t *testing.T, extra ...func(app string) []string) *proxyWorld {
	t.Helper()
	var reached atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		fmt.Fprintf(rw, "agent=%s subject=%s", r.Header.Get("X-Warden-Agent-Id"), r.Header.Get("X-Warden-Subject"))
		if strings.HasSuffix(r.URL.Path, ".") {
			fmt.Fprintf(rw, " path=%s", r.URL.EscapedPath())
		}
	}))
	t.Cleanup(app.Close)
	dir := t.TempDir()
	acc := model.NewID(model.AccountPrefix)
	fn := "/account/" + acc + "/subscription/sub-0000000000000001/fn/f1"
	routesFile := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(routesFile, []byte(`
routes:
`+testkit.FunctionRoute+`  - name: reports
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
	flags := append(root.bootstrapFlags(t, dir), "--account", acc, "--routes", routesFile)
	for _, e := range extra {
		flags = append(flags, e(app.URL)...)
	}
	w := startWarden(t, "warden", filepath.Join(dir, "data"), flags...)
	w.waitReady(t, 0)
	rootTok := root.token(t, w.base)
	alice := newAgentKey(t, "https://idp.test", "alice", "k1")
	addIssuer(t, w, rootTok, acc, alice)
	var aliceUser struct{ ID string }
	w.mustCall(t, http.MethodPost, "/v1/account/"+acc+"/user", rootTok,
		userBody("Alice", alice, "function:get", "/account/"+acc+"/subscription/sub-0000000000000001/"), &aliceUser)
	aliceTok := alice.token(t, w.base)
	return &proxyWorld{w: w, dir: dir, acc: acc, fn: fn, aliceTok: aliceTok, aliceID: aliceUser.ID,
		app: strings.TrimPrefix(app.URL, "http://"), reached: &reached}
}

// unixClient is an HTTP client whose every connection goes to sock.
func unixClient(sock string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

// TestNginxForwardAuth: real nginx with auth_request, configured as
// docs/proxies.md says, in front of an app, Warden deciding every request
// through its route table: every case of the decision table end to end,
// the path bypasses, and spoofed identity headers. A request Warden
// refuses never reaches the app.
func TestNginxForwardAuth(t *testing.T) {
	integration(t)
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if nginx, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Skip("no nginx binary (.ci/run installs Debian's nginx-light)")
		}
	}
	pw := newProxyWorld(t)
	dir, w := pw.dir, pw.w
	server := strings.NewReplacer("listen 80;", "listen unix:"+filepath.Join(dir, "nginx.sock")+";",
		"127.0.0.1:7800", w.listen, "127.0.0.1:8080", pw.app).Replace(docBlock(t, "docs/proxies.md", "nginx"))
	conf := strings.NewReplacer("{{dir}}", dir, "{{server}}", server).Replace(nginxWrap)
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
	client := unixClient(sock)
	eventually(t, 10*time.Second, "nginx listens", func() (bool, string) {
		_, err := os.Stat(sock)
		return err == nil, fmt.Sprint(err)
	})

	// nginx answers 500 when the door answers neither 2xx, 401 nor 403.
	proxyCases(t, pw, client, http.StatusInternalServerError)
}

// anyDenial, as a case's status, is either denial: 401 or 403.
const anyDenial = -1

// proxyCases runs the decision table through a proxy; refused is the
// status the proxy answers when the door refuses a path (400).
func proxyCases(t *testing.T, pw *proxyWorld, client *http.Client, refused int) {
	t.Helper()
	acc, fn, aliceTok, reached := pw.acc, pw.fn, pw.aliceTok, pw.reached
	aliceUser := struct{ ID string }{pw.aliceID}
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
		{"a dot-dot segment", "GET", "/account/" + acc + "/x/../subscription/sub-0000000000000001/fn/f1", aliceTok, nil, refused, ""},
		{"an encoded dot-dot", "GET", "/account/" + acc + "/x/%2e%2e/subscription/sub-0000000000000001/fn/f1", aliceTok, nil, refused, ""},
		{"a double slash", "GET", "/account/" + acc + "//subscription/sub-0000000000000001/fn/f1", aliceTok, nil, refused, ""},
		{"an encoded slash", "GET", "/account/" + acc + "/subscription/sub-0000000000000001/fn/f1%2Fx", aliceTok, nil, refused, ""},
		{"a semicolon", "GET", fn + ";jsessionid=1", aliceTok, nil, refused, ""},
		{"a double-encoded dot-dot, decoded once", "GET", "/account/" + acc + "/x/%252e%252e/subscription/sub-0000000000000001/fn/f1", aliceTok, nil, 403, ""},
		{"a trailing dot on the account", "GET", "/account/" + acc + "./subscription/sub-0000000000000001/fn/f1", aliceTok, nil, anyDenial, ""},
		{"a trailing dot on the function: decided as the app serves it", "GET", fn + ".", aliceTok, nil, 200, "agent=" + aliceUser.ID + " subject=alice path=" + fn + "."},
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
		if resp.StatusCode != tc.status && (tc.status != anyDenial || resp.StatusCode != 401 && resp.StatusCode != 403) {
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

// TestCaddyForwardAuth: real Caddy with forward_auth, configured as
// docs/proxies.md says, through the same decision table as nginx.
func TestCaddyForwardAuth(t *testing.T) {
	integration(t)
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("no caddy binary (.ci/run installs Debian's caddy)")
	}
	pw := newProxyWorld(t)
	sock := filepath.Join(pw.dir, "caddy.sock")
	site := strings.NewReplacer(":80 {", "http:// {\n\tbind unix/"+sock,
		"127.0.0.1:7800", pw.w.listen, "127.0.0.1:8080", pw.app).Replace(docBlock(t, "docs/proxies.md", "caddyfile"))
	conf := "{\n\tadmin off\n\tstorage file_system " + filepath.Join(pw.dir, "caddy-data") + "\n}\n" + site
	confFile := filepath.Join(pw.dir, "Caddyfile")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(caddy, "validate", "--config", confFile, "--adapter", "caddyfile").CombinedOutput(); err != nil {
		t.Fatalf("caddy validate: %v\n%s", err, out)
	}
	startProc(t, "caddy", caddy, "run", "--config", confFile, "--adapter", "caddyfile")
	eventually(t, 20*time.Second, "caddy listens", func() (bool, string) {
		_, err := os.Stat(sock)
		return err == nil, fmt.Sprint(err)
	})
	// Caddy passes the door's other answers on as they are.
	proxyCases(t, pw, unixClient(sock), http.StatusBadRequest)
}

// TestReverseProxy: warden serve --upstream guards the app itself, on
// --proxy-listen, through the same decision table as nginx and Caddy.
func TestReverseProxy(t *testing.T) {
	integration(t)
	pw := newProxyWorld(t, func(app string) []string {
		return []string{"--upstream", app, "--proxy-listen", "127.0.0.1:0"}
	})
	lines := pw.w.logLines("listening")
	if len(lines) == 0 || lines[0]["proxy_listen"] == nil {
		t.Fatalf("no proxy_listen in %v", lines)
	}
	addr := lines[0]["proxy_listen"].(string)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		},
	}}
	// The door itself answers what it refuses: 400 for a refused path.
	proxyCases(t, pw, client, http.StatusBadRequest)
}

// TestEnvoyGRPC: warden serve --grpc-listen answers Envoy's ext_authz
// Check, built with Envoy's own protos, through the route table, and
// gRPC's health service says it serves.
func TestEnvoyGRPC(t *testing.T) {
	integration(t)
	pw := newProxyWorld(t, func(string) []string { return []string{"--grpc-listen", "127.0.0.1:0"} })
	lines := pw.w.logLines("listening")
	if len(lines) == 0 || lines[0]["grpc_listen"] == nil {
		t.Fatalf("no grpc_listen in %v", lines)
	}
	conn, err := grpc.NewClient(lines[0]["grpc_listen"].(string), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eventually(t, 10*time.Second, "the gRPC health service serves", func() (bool, string) {
		h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
		return err == nil && h.GetStatus() == healthpb.HealthCheckResponse_SERVING, fmt.Sprint(h, err)
	})
	auth := authv3.NewAuthorizationClient(conn)
	check := func(path, token string, headers map[string]string) *authv3.CheckResponse {
		t.Helper()
		h := map[string]string{}
		for k, v := range headers {
			h[k] = v
		}
		if token != "" {
			h["authorization"] = "Bearer " + token
		}
		resp, err := auth.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: "app.example.com", Path: path, Headers: h}}}})
		if err != nil {
			t.Fatalf("Check %s: %v", path, err)
		}
		return resp
	}
	header := func(resp *authv3.CheckResponse, name string) string {
		for _, o := range resp.GetOkResponse().GetHeaders() {
			if o.GetHeader().GetKey() == name {
				return o.GetHeader().GetValue()
			}
		}
		return "(unset)"
	}
	if r := check(pw.fn, pw.aliceTok, map[string]string{"x-warden-agent-id": "usr-00000000000000ff"}); r.GetStatus().GetCode() != 0 ||
		header(r, "x-warden-agent-id") != pw.aliceID || header(r, "x-warden-subject") != "alice" {
		t.Errorf("allowed: %v", r)
	}
	if r := check(pw.fn, "", nil); r.GetDeniedResponse().GetStatus().GetCode() != 401 {
		t.Errorf("no token: %v", r)
	}
	if r := check("/elsewhere", pw.aliceTok, nil); r.GetDeniedResponse().GetStatus().GetCode() != 403 {
		t.Errorf("unmatched: %v", r)
	}
	if r := check("/account/"+pw.acc+"/x/../subscription/sub-0000000000000001/fn/f1", pw.aliceTok, nil); r.GetDeniedResponse().GetStatus().GetCode() != 400 {
		t.Errorf("a dot-dot: %v", r)
	}
	_, err = auth.Check(ctx, &authv3.CheckRequest{})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "no HTTP attributes") {
		t.Errorf("a check without HTTP attributes: %v", err)
	}
}

// TestSidecarPodArgs: the pod of docs/proxies.md gives warden serve
// arguments it takes: every flag known, the configuration complete.
func TestSidecarPodArgs(t *testing.T) {
	data, err := os.ReadFile("../../docs/proxies.md")
	if err != nil {
		t.Fatal(err)
	}
	var pod struct {
		Kind string
		Spec struct {
			Containers []struct {
				Name string
				Args []string
			}
		}
	}
	for _, block := range strings.Split(string(data), "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if strings.Contains(block, "kind: Pod") {
			if err := yaml.Unmarshal([]byte(block), &pod); err != nil {
				t.Fatal(err)
			}
		}
	}
	if pod.Kind != "Pod" {
		t.Fatal("docs/proxies.md has no pod")
	}
	for _, c := range pod.Spec.Containers {
		if c.Name != "warden" {
			continue
		}
		if len(c.Args) == 0 || c.Args[0] != "serve" {
			t.Fatalf("the warden container runs %v", c.Args)
		}
		fs, f := newServeFlags(io.Discard)
		if err := fs.Parse(c.Args[1:]); err != nil {
			t.Fatal(err)
		}
		if err := f.complete(); err != nil {
			t.Fatal(err)
		}
		if f.RouteTable != "app" || f.Upstream == "" || f.ProxyListen != ":8081" || f.Role != roleSidecar {
			t.Fatalf("the pod's configuration: %+v", f)
		}
		return
	}
	t.Fatal("the pod has no warden container")
}
