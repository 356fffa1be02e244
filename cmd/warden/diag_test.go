//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
)

// TestDiagnostics: the real binary's /metrics carries every family it
// documents and passes the linter; `warden health` probes it; the
// decision log writes denials with a call id and no token.
func TestDiagnostics(t *testing.T) {
	integration(t)
	root := newRootKey(t)
	dir := t.TempDir()
	w := startWarden(t, "warden", filepath.Join(dir, "data"), append(root.bootstrapFlags(t, dir), "--decision-log", "deny", "--hook-memory-total-pages", "2048")...)
	w.waitReady(t, 0)
	acc := w.servingAccount(t)
	rootTok := root.token(t, w.base)
	w.mustCall(t, http.MethodGet, "/v1/account/"+acc+"/me", rootTok, nil, nil)
	if d := w.check(t, rootTok, "function:get", "/account/"+acc+"/fn", 0); !d.Allow {
		t.Fatalf("root was denied: %+v", d)
	}
	if d := w.check(t, "", "function:get", "/account/"+acc+"/fn", 0); d.Status != 401 {
		t.Fatalf("no token: %+v", d)
	}

	r, err := httpDo(http.MethodGet, "http://"+w.diag+"/metrics", "", nil)
	if err != nil || r.status != 200 {
		t.Fatalf("/metrics: %v %v", r, err)
	}
	lintExposition(t, r.body)
	var parser expfmt.TextParser
	families, err := parser.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"warden_check_duration_seconds", "warden_decisions_total",
		"warden_token_cache_hits_total", "warden_token_cache_misses_total", "warden_token_cache_evictions_total",
		"warden_key_fetches_total", "warden_hooks_attached",
		"warden_replication_revision", "warden_replication_lag_seconds", "warden_replication_ready",
		"warden_admin_requests_total", "warden_admin_request_duration_seconds",
		"warden_build_info", "go_goroutines", "process_cpu_seconds_total",
	} {
		if families[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	body := string(r.body)
	for _, want := range []string{
		`warden_decisions_total{mode="enforce",reason="granted",result="allow"} 1`,
		`warden_decisions_total{mode="enforce",reason="missing_token",result="deny"} 1`,
		`warden_admin_requests_total{code="200",method="get",route="/v1/account/{acc}/me"} 1`,
		"warden_hook_memory_limit_bytes 1.34217728e+08", // 2048 pages
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// warden health, as a container's health check runs it.
	health := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"health"}, args...), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := health("--addr", w.diag); code != 0 || !strings.HasPrefix(out, "ready at revision") {
		t.Errorf("health: %d %q", code, out)
	}
	if code, out := health("--addr", w.diag, "--live"); code != 0 || out != "alive\n" {
		t.Errorf("health --live: %d %q", code, out)
	}
	t.Setenv("WARDEN_DIAG_LISTEN", "0.0.0.0"+w.diag[strings.LastIndex(w.diag, ":"):])
	code, out := health("-o", "json")
	var res struct {
		OK     bool `json:"ok"`
		Status int  `json:"status"`
		Body   struct {
			Ready bool `json:"ready"`
		} `json:"body"`
	}
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || !res.OK || res.Status != 200 || !res.Body.Ready {
		t.Errorf("health -o json from WARDEN_DIAG_LISTEN on 0.0.0.0: %d %q %v", code, out, err)
	}
	dead := deadAddress(t)
	if code, out := health("--addr", dead); code != exitServer || !strings.Contains(out, dead) {
		t.Errorf("health of nothing: %d %q; want %d naming the address", code, out, exitServer)
	}
	// The API's port answers, but not as the diagnostics listener: not
	// ready (1), with a hint, not unreachable (5).
	for _, live := range [][]string{nil, {"--live"}} {
		if code, out := health(append([]string{"--addr", w.listen}, live...)...); code != exitError || !strings.Contains(out, "is --addr the address of --diag-listen?") {
			t.Errorf("health %v of the API's port: %d %q; want %d and a hint", live, code, out, exitError)
		}
	}
	if code, _ := health("--addr", "nonsense"); code != exitUsage {
		t.Errorf("health --addr nonsense: exit %d, want %d", code, exitUsage)
	}

	// The decision log: the denial only, with its call id; never a token.
	eventually(t, startTimeout, "the denial in the decision log", func() (bool, string) {
		return len(w.proc.logLines("decision")) == 1, w.proc.out.String()
	})
	rec := w.proc.logLines("decision")[0]
	if rec["reason_class"] != "missing_token" || rec["status"] != 401.0 || rec["call_id"] == "" || rec["component"] != "decision" {
		t.Errorf("decision record %v", rec)
	}
	for i, part := range strings.Split(rootTok, ".") {
		if strings.Contains(w.proc.out.String(), part) {
			t.Fatalf("the server's log holds part %d of a token", i)
		}
	}
}

// lintExposition fails the test for every problem promlint finds.
func lintExposition(t *testing.T, body []byte) {
	t.Helper()
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// deadAddress returns a loopback address that refuses connections: its
// port is bound by a socket that does not listen, and stays so until the
// test ends, so nobody else can take it meanwhile.
func deadAddress(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}
