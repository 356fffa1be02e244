package node

import (
	"context"
	"encoding/json"
	"fmt"
	clientv3 "go.etcd.io/etcd/client/v3"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wardenauthz/warden/admin"
	"github.com/wardenauthz/warden/docs"
	"github.com/wardenauthz/warden/internal/testkit/contract"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/storage"
)

// TestRoles: a node of each role serves what its role says and refuses the
// rest with 404, is ready on an empty store, shows its parts' metrics, and
// closes.
func TestRoles(t *testing.T) {
	client := startStore(t)

	serve := func(h http.Handler, method, path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(`{"action":"function:get","resource":"/x/"}`)))
		return rec.Code, rec.Body.String()
	}
	for i, tc := range []struct {
		role             Role
		check, adminCall int
		checkMsg, admMsg string
		hookMetrics      bool
		console          int
	}{
		{RoleAll, 200, 403, `"status":401`, "Unauthorized", true, 200},
		{RoleAdmin, 404, 403, "serves the admin API only", "Unauthorized", false, 200},
		{RoleSidecar, 200, 404, `"status":401`, "serves checks only", true, 404},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			n, err := New(Config{Role: tc.role,
				Engine: sidecar.Config{DefaultAccount: "acc-0123456789abcdef", Audiences: []string{"http://warden.test"}},
				Admin:  admin.Config{BaseURL: "http://warden.test"}},
				Deps{Client: client, Layout: storage.NewLayout(fmt.Sprintf("/node-test/%d/", i)), Registry: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := n.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
			api, diag := checked(t, n)
			if code, body := serve(api, http.MethodPost, "/v1/check"); code != tc.check || !strings.Contains(body, tc.checkMsg) {
				t.Errorf("check: %d %s", code, body)
			}
			if code, body := serve(api, http.MethodGet, "/v1/account/acc-0123456789abcdef/me"); code != tc.adminCall || !strings.Contains(body, tc.admMsg) {
				t.Errorf("admin: %d %s", code, body)
			}
			if code, body := serve(diag, http.MethodGet, "/readyz"); code != 200 || !strings.Contains(body, `"ready":true`) {
				t.Errorf("/readyz: %d %s", code, body)
			}
			if code, body := serve(diag, http.MethodGet, "/healthz"); code != 200 || body != "{\"status\":\"ok\"}\n" {
				t.Errorf("/healthz: %d %q", code, body)
			}
			if code, body := serve(api, http.MethodGet, "/v1/health"); code != 200 || body != "" {
				t.Errorf("/v1/health: %d %q", code, body)
			}
			// /v1/status is /readyz's body on the API listener: the
			// hooks' status where the node serves checks, without the
			// accounts that have hooks.
			if code, body := serve(api, http.MethodGet, "/v1/status"); code != 200 || !strings.Contains(body, `"ready":true`) ||
				strings.Contains(body, `"hooks":{`) != tc.hookMetrics || strings.Contains(body, "byAccount") {
				t.Errorf("/v1/status: %d %s", code, body)
			}
			if code, body := serve(api, http.MethodGet, "/ui/"); code != tc.console || code == 200 && !strings.Contains(body, "<html") {
				t.Errorf("/ui/: %d %.200s", code, body)
			}
			spec, _ := docs.OpenAPIJSON()
			if code, body := serve(api, http.MethodGet, "/v1/openapi.json"); code != 200 || body != string(spec) {
				t.Errorf("/v1/openapi.json: %d %.200s", code, body)
			}
			_, metrics := serve(diag, http.MethodGet, "/metrics")
			if !strings.Contains(metrics, "warden_replication_ready 1") || strings.Contains(metrics, "warden_hooks_attached") != tc.hookMetrics {
				t.Errorf("/metrics:\n%s", metrics)
			}
			closed := make(chan struct{})
			go func() { n.Close(); n.Close(); close(closed) }()
			select {
			case <-closed:
			case <-time.After(30 * time.Second):
				t.Fatal("Close did not return")
			}
		})
	}
	if _, err := New(Config{Role: "boss"}, Deps{Client: client}); err == nil || !strings.Contains(err.Error(), `role "boss"`) {
		t.Fatalf("a bad role: %v", err)
	}
}

// TestRoutesFile: a node with --routes serves forward auth over the file's
// table, reloads it when it changes, keeps the table serving when a reload
// fails and says so on /readyz; a table that does not load stops the start.
func TestRoutesFile(t *testing.T) {
	client := startStore(t)
	file := filepath.Join(t.TempDir(), "routes.yaml")
	write := func(text string) {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{Role: RoleSidecar, RoutesFile: file,
		Engine: sidecar.Config{DefaultAccount: "acc-0123456789abcdef", Audiences: []string{"http://warden.test"}}}
	deps := Deps{Client: client, Layout: storage.NewLayout("/routes-test/")}

	write("routes:\n  - name: a\n    path: /x/{id\n")
	if _, err := New(cfg, deps); err == nil || !strings.Contains(err.Error(), `route "a": "path"`) {
		t.Fatalf("a bad table at start: %v", err)
	}
	write("default: allow\n")
	n, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	api, _ := checked(t, n)
	forward := func() int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/v1/authz/forward", nil)
		req.Header.Set("X-Original-Method", "GET")
		req.Header.Set("X-Original-URI", "/anything")
		api.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := forward(); code != 200 {
		t.Fatalf("default allow: %d", code)
	}
	envoy := httptest.NewRecorder()
	api.ServeHTTP(envoy, httptest.NewRequest(http.MethodGet, "/v1/authz/envoy/a/../b", nil))
	if envoy.Code != 400 {
		t.Fatalf("Envoy's door, a dot-dot path: %d %s", envoy.Code, envoy.Body)
	}
	write("default: deny\nroutes: []\n")
	waitFor(t, func() bool { return forward() == 403 })
	write("routes:\n  - name: b\n    mode: audit\n    path: /b\n")
	waitFor(t, func() bool { return n.Ready().Routes.LoadErrors == 1 })
	if st := n.Ready().Routes; !st.Loaded || !strings.Contains(st.Error, `route "b": "mode"`) || forward() != 403 {
		t.Fatalf("after a bad reload: %+v", st)
	}
}

// TestRouteTableInStore: a node serving a table of the store is not ready
// until the table is there, then serves it, and the admin API's write
// waits for it; a table from a file and one from the store at once is an
// error.
func TestRouteTableInStore(t *testing.T) {
	client := startStore(t)
	const acc = "acc-0123456789abcdef"
	layout := storage.NewLayout("/routes-store-test/")
	cfg := Config{Role: RoleSidecar, RouteTable: TableRef{Account: acc, Name: "app"},
		Engine: sidecar.Config{DefaultAccount: acc, Audiences: []string{"http://warden.test"}}}
	n, err := New(cfg, Deps{Client: client, Layout: layout})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	waitFor(t, func() bool {
		return n.Replica.Status().Ready && !strings.Contains(n.Routes.Status().Error, "has not been read")
	})
	if r := n.Ready(); r.Ready || !strings.Contains(r.Reason, "no route table is serving: the route table "+acc+"/app is not in the store") {
		t.Fatalf("without the table: %+v", r)
	}
	api, diag := checked(t, n)
	health := httptest.NewRecorder()
	api.ServeHTTP(health, httptest.NewRequest(http.MethodGet, "/v1/health", nil))
	if health.Code != 503 || !strings.Contains(health.Body.String(), "cannot serve yet: no route table is serving") {
		t.Fatalf("/v1/health of a node that is not ready: %d %s", health.Code, health.Body)
	}
	ready := httptest.NewRecorder()
	diag.ServeHTTP(ready, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if ready.Code != 503 || !strings.Contains(ready.Body.String(), `"routes":{"source":`) {
		t.Fatalf("/readyz of a node that is not ready: %d %s", ready.Code, ready.Body)
	}
	// /v1/status answers /readyz's body with 200: readiness is in it.
	status := httptest.NewRecorder()
	api.ServeHTTP(status, httptest.NewRequest(http.MethodGet, "/v1/status", nil))
	var got, want Readiness
	if err := json.Unmarshal(status.Body.Bytes(), &got); err != nil || status.Code != 200 {
		t.Fatalf("/v1/status of a node that is not ready: %d %s", status.Code, status.Body)
	}
	if err := json.Unmarshal(ready.Body.Bytes(), &want); err != nil {
		t.Fatal(err)
	}
	got.LagSeconds, want.LagSeconds = 0, 0
	// Where the table is read from stays on the diagnostics listener.
	if got.Routes.Source != "" || want.Routes.Source == "" {
		t.Fatalf("routes.source on /v1/status %q, on /readyz %q; want it on /readyz only", got.Routes.Source, want.Routes.Source)
	}
	want.Routes.Source = ""
	if got.Ready || !strings.Contains(got.Reason, "no route table is serving") || fmt.Sprint(got.Status, *got.Routes) != fmt.Sprint(want.Status, *want.Routes) {
		t.Fatalf("/v1/status of a node that is not ready: %s; /readyz: %s", status.Body, ready.Body)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/v1/authz/forward", nil)
	req.Header.Set("X-Original-Method", "GET")
	req.Header.Set("X-Original-URI", "/anything")
	api.ServeHTTP(rec, req)
	if rec.Code != 503 {
		t.Fatalf("a door without its table: %d %s", rec.Code, rec.Body)
	}
	if _, err := client.Put(context.Background(), layout.RouteTable(acc, "app"), `{"default":"allow"}`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return n.Ready().Ready })
	rec = httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("a door with its table: %d %s", rec.Code, rec.Body)
	}

	cfg.RoutesFile = filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(cfg.RoutesFile, []byte("default: allow\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, Deps{Client: client, Layout: layout}); err == nil || !strings.Contains(err.Error(), "from a file or from the store, not both") {
		t.Fatalf("both sources: %v", err)
	}
}

// checked returns the node's handlers with every answer held to
// docs/openapi.yaml: the API listener's and the diagnostics listener's.
func checked(t *testing.T, n *Node) (api, diag http.Handler) {
	return contract.Wrap(t, n.Handler()), contract.New(t, contract.Diagnostics).Handler(n.DiagHandler())
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// startStore starts an embedded etcd for the test and returns its client.
func startStore(t *testing.T) *clientv3.Client {
	t.Helper()
	emb, err := storage.StartEmbedded(storage.EmbeddedConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	client, err := storage.Dial(emb.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// TestDocumentedRoutes: every operation of docs/openapi.yaml is served by a
// node with every part (the admin and check APIs, the doors over a route
// table, the diagnostics), none refused as a route net/http does not know,
// and each answer, to a caller without a token, is one the document gives.
func TestDocumentedRoutes(t *testing.T) {
	client := startStore(t)
	file := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(file, []byte("default: deny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{RoutesFile: file,
		Engine: sidecar.Config{DefaultAccount: "acc-0123456789abcdef", Audiences: []string{"http://warden.test"}},
		Admin:  admin.Config{BaseURL: "http://warden.test"}},
		Deps{Client: client, Layout: storage.NewLayout("/documented-test/")})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	api, diag := checked(t, n)

	spec, err := docs.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	values := strings.NewReplacer("{accountId}", "acc-0123456789abcdef", "{issuerId}", "https%3A%2F%2Fidp.test",
		"{userId}", "usr-00000000000000a1", "{clientId}", "clt-00000000000000b0", "{hookName}", "h1",
		"{routeTableName}", "app", "{originalPath}", "app/x", "{asset}", "index.html")
	ops := 0
	for path, item := range doc.Paths {
		h := api
		if _, ok := item["servers"]; ok {
			h = diag
		}
		for method := range item {
			switch method {
			case "parameters", "servers", "description", "summary":
				continue
			}
			ops++
			req := httptest.NewRequest(strings.ToUpper(method), values.Replace(path), strings.NewReader("{}"))
			req.Header.Set("X-Original-Method", "GET")
			req.Header.Set("X-Original-URI", "/app/x")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if (rec.Code == 404 || rec.Code == 405) && strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
				t.Errorf("%s %s is not served: %d %s", method, path, rec.Code, rec.Body)
			}
		}
	}
	if ops < 40 {
		t.Fatalf("only %d operations", ops)
	}
}
