//go:build linux

package main

// Process-level integration tests: real warden processes over real etcd
// processes (or the embedded etcd), driven only through their HTTP APIs,
// signals and files. The helpers are in procs_test.go.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenauthz/warden/policywasm/wasmtest"
	"github.com/wardenauthz/warden/sdk/model"
)

const usersIssuer = "https://users.warden.test"

// TestClusterTwoWardensShareOneCluster: an admin node and a sidecar node on
// one 3-member etcd cluster; a user created on the admin node is allowed
// by the sidecar at the revision the write returned, and the sidecar
// refuses admin requests.
func TestClusterTwoWardensShareOneCluster(t *testing.T) {
	integration(t)
	// B has no --account: it reads the account A bootstraps. Its checks
	// wait long enough for a hook to compile on a busy machine.
	_, root, acc, a, b := adminAndSidecar(t, 3, false, "--min-revision-wait", "15s")
	if got := a.servingAccount(t); got != acc {
		t.Fatalf("A serves account %q, want %q", got, acc)
	}
	if got := b.servingAccount(t); got != acc {
		t.Fatalf("B serves account %q, want the bootstrapped %q", got, acc)
	}

	rootTok := root.token(t, a.base)
	var me struct {
		ID string `json:"id"`
	}
	a.mustCall(t, http.MethodGet, "/v1/account/"+acc+"/me", rootTok, nil, &me)
	if !model.ValidID(model.ClientPrefix, me.ID) {
		t.Fatalf("the root agent is %q, want a client", me.ID)
	}

	alice := newAgentKey(t, usersIssuer, "alice", "k1")
	addIssuer(t, a, rootTok, acc, alice)
	var user struct {
		ID string `json:"id"`
	}
	r := a.mustCall(t, http.MethodPost, "/v1/account/"+acc+"/user", rootTok,
		userBody("Alice", alice, "function:get", "/account/"+acc+"/"), &user)
	rev := revision(t, r)

	aliceTok := alice.token(t, a.base)
	resource := "/account/" + acc + "/subscription/sub-0000000000000001/function/f/"
	d := b.check(t, aliceTok, "function:get", resource, rev)
	if !d.Allow || d.Status != http.StatusOK || d.Agent.ID != user.ID || d.Agent.Type != model.AgentUser || d.Revision < rev {
		t.Fatalf("check on B at revision %d: %+v; want allowed for user %s", rev, d, user.ID)
	}
	if d := b.check(t, aliceTok, "function:put", resource, rev); d.Allow || d.Status != http.StatusForbidden {
		t.Fatalf("check on B of an action not granted: %+v; want 403", d)
	}

	// A hook registered on A reaches B through the store: B compiles it
	// and applies it to its checks, and counts its calls. A check on B at
	// the revision of the hook's write waits until B has attached it.
	tenant := wasmtest.Hook(t, "examples/tenant")
	r = a.mustCall(t, http.MethodPut, "/v1/account/"+acc+"/hook/tenant", rootTok,
		map[string]string{"module": base64.StdEncoding.EncodeToString(tenant), "actionPrefix": "function:"}, nil)
	if d := b.check(t, aliceTok, "function:get", resource, revision(t, r)); d.Allow || !strings.Contains(d.Reason, `hook "tenant" denied`) {
		t.Fatalf("check on B at the revision of the hook's write: %+v; want denied by the hook", d)
	}
	metrics, err := httpDo(http.MethodGet, "http://"+b.diag+"/metrics", "", nil)
	if err != nil || !strings.Contains(string(metrics.body), `warden_hook_calls_total{account="`+acc+`",hook="tenant"}`) ||
		!strings.Contains(string(metrics.body), "warden_hooks_attached 1") ||
		!strings.Contains(string(metrics.body), `warden_hook_duration_seconds_count{account="`+acc+`",hook="tenant"}`) ||
		!strings.Contains(string(metrics.body), `warden_decisions_total{mode="enforce",reason="hook_denied",result="deny"}`) {
		t.Fatalf("B's metrics: %v\n%s", err, metrics.body)
	}
	lintExposition(t, metrics.body)
	if r := a.call(t, http.MethodDelete, "/v1/account/"+acc+"/hook/tenant", rootTok, nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE of the hook on A: %s", r)
	}
	eventually(t, 30*time.Second, "B drops the hook", func() (bool, string) {
		d := b.check(t, aliceTok, "function:get", resource, 0)
		return d.Allow, d.Reason
	})

	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/v1/account/" + acc + "/user"},
		{http.MethodPost, "/v1/account/" + acc + "/user"},
		{http.MethodGet, "/v1/account/" + acc + "/user/" + user.ID},
		{http.MethodGet, "/v1/account/" + acc + "/me"},
	} {
		r := b.call(t, req.method, req.path, rootTok, map[string]any{"firstName": "Mallory"})
		var e struct {
			Status, StatusCode int
			Message            string
		}
		_ = json.Unmarshal(r.body, &e)
		if r.status != http.StatusNotFound || e.StatusCode != http.StatusNotFound || !strings.Contains(e.Message, "serves checks only") {
			t.Errorf("%s %s on the sidecar: %s; want 404 saying it serves checks only", req.method, req.path, r)
		}
	}
	// The refused POST wrote nothing.
	var list struct {
		Items []struct {
			FirstName string `json:"firstName"`
		} `json:"items"`
	}
	a.mustCall(t, http.MethodGet, "/v1/account/"+acc+"/user", rootTok, nil, &list)
	if len(list.Items) != 1 || list.Items[0].FirstName != "Alice" {
		t.Errorf("users after the refused writes: %+v; want only Alice", list.Items)
	}
}

// TestClusterMemberKilledDuringWriteBurst: concurrent user creates while an
// etcd member (the leader when it can be told) is SIGKILLed. Creates may
// fail with 503 meanwhile; every create that was acknowledged must be
// there afterwards, in the list and by id.
func TestClusterMemberKilledDuringWriteBurst(t *testing.T) {
	integration(t)
	cluster := startEtcd(t, 3)
	dir := t.TempDir()
	root := newRootKey(t)
	acc := model.NewID(model.AccountPrefix)
	w := startWarden(t, "warden", filepath.Join(dir, "w"), append([]string{
		"--role", "all", "--etcd-endpoints", cluster.endpoints(), "--account", acc}, root.bootstrapFlags(t, dir)...)...)
	w.waitReady(t, 0)
	rootTok := root.token(t, w.base)
	usersPath := "/v1/account/" + acc + "/user"

	const total, writers = 200, 4
	const killAfter = total / 3
	type outcome struct {
		name      string
		id        string
		rev       int64
		status    int
		err       error
		afterKill bool
	}
	jobs := make(chan int, total)
	for i := range total {
		jobs <- i
	}
	close(jobs)
	results := make(chan outcome, total)
	var acked atomic.Int32
	var killed atomic.Bool
	killNow, burstDone := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				o := outcome{name: fmt.Sprintf("burst-%03d", i), afterKill: killed.Load()}
				body := map[string]any{
					"firstName":  o.name,
					"identities": []map[string]string{{"issuerId": usersIssuer, "subject": o.name}},
					"access":     map[string]any{"allow": []map[string]string{{"action": "function:get", "resource": "/account/" + acc + "/" + o.name + "/"}}},
				}
				r, err := httpDo(http.MethodPost, w.url+usersPath, rootTok, body)
				o.status, o.err = r.status, err
				if err == nil && r.status == http.StatusOK {
					var u struct {
						ID string `json:"id"`
					}
					if json.Unmarshal(r.body, &u) != nil || !model.ValidID(model.UserPrefix, u.ID) {
						o.err = fmt.Errorf("acknowledged with body %q", r.body)
					}
					o.id = u.ID
					fmt.Sscan(r.header.Get("Warden-Revision"), &o.rev)
					if acked.Add(1) == killAfter {
						close(killNow)
					}
				} else if err == nil {
					o.err = fmt.Errorf("%s", r)
				}
				results <- o
			}
		}()
	}
	go func() { wg.Wait(); close(burstDone) }()

	select {
	case <-killNow:
	case <-burstDone:
		t.Fatalf("the burst ended with %d creates acknowledged, fewer than the %d before the kill", acked.Load(), killAfter)
	}
	victim := cluster.leader()
	role := "leader"
	if victim < 0 {
		victim, role = 0, "member (no leader found)"
	}
	killed.Store(true)
	cluster.members[victim].proc.kill()
	t.Logf("SIGKILLed etcd %s, the %s, after %d acknowledged creates", cluster.members[victim].name, role, acked.Load())
	select {
	case <-burstDone:
	case <-time.After(3 * time.Minute):
		t.Fatalf("the burst did not end (each request is bounded by %s)", requestTimeout)
	}
	close(results)

	acknowledged := map[string]string{} // id → firstName
	var maxRev int64
	failed, failedAfterKill := 0, 0
	for o := range results {
		switch {
		case o.status == http.StatusOK && o.err == nil:
			if _, dup := acknowledged[o.id]; dup {
				t.Errorf("id %s acknowledged twice", o.id)
			}
			acknowledged[o.id] = o.name
			maxRev = max(maxRev, o.rev)
			if o.rev <= 0 {
				t.Errorf("create %s acknowledged without a Warden-Revision", o.name)
			}
		case o.status == http.StatusServiceUnavailable:
			failed++
			if failed <= 3 {
				t.Logf("create %s failed: %v", o.name, o.err)
			}
			if o.afterKill {
				failedAfterKill++
			}
		default:
			// Only 503 is an acceptable failure: a create must neither hang
			// past the client's timeout nor fail in another way.
			t.Errorf("create %s: status %d, error %v", o.name, o.status, o.err)
		}
	}
	t.Logf("%d creates acknowledged, %d failed with 503 (%d of them sent after the kill)", len(acknowledged), failed, failedAfterKill)

	// The cluster keeps its quorum: writes work again.
	var after struct {
		ID string `json:"id"`
	}
	eventually(t, startTimeout, "a create after the burst succeeds", func() (bool, string) {
		r, err := httpDo(http.MethodPost, w.url+usersPath, rootTok, map[string]any{"firstName": "after-burst"})
		if err != nil {
			return false, err.Error()
		}
		if r.status != http.StatusOK {
			return false, r.String()
		}
		_ = json.Unmarshal(r.body, &after)
		maxRev = max(maxRev, revision(t, r))
		return true, ""
	})
	acknowledged[after.ID] = "after-burst"
	w.waitReady(t, maxRev)

	listed := map[string]string{}
	next := ""
	for page := 0; ; page++ {
		if page > total {
			t.Fatalf("the list of users does not end")
		}
		q := url.Values{"count": {"100"}}
		if next != "" {
			q.Set("next", next)
		}
		var l struct {
			Items []struct {
				ID        string `json:"id"`
				FirstName string `json:"firstName"`
			} `json:"items"`
			Next *string `json:"next"`
		}
		r := w.mustCall(t, http.MethodGet, usersPath+"?"+q.Encode(), rootTok, nil, &l)
		for _, it := range l.Items {
			if _, dup := listed[it.ID]; dup {
				t.Errorf("user %s listed twice", it.ID)
			}
			listed[it.ID] = it.FirstName
		}
		if l.Next == nil {
			break
		}
		if *l.Next == "" || len(l.Items) == 0 {
			t.Fatalf("page %d: next %q with %d items: %s", page, *l.Next, len(l.Items), r)
		}
		next = *l.Next
	}
	for id, name := range acknowledged {
		if got, ok := listed[id]; !ok || got != name {
			t.Errorf("acknowledged user %s (%s) listed as %q (present %v)", id, name, got, ok)
		}
		var u struct {
			ID        string `json:"id"`
			FirstName string `json:"firstName"`
		}
		r := w.call(t, http.MethodGet, usersPath+"/"+id, rootTok, nil)
		if r.status != http.StatusOK || json.Unmarshal(r.body, &u) != nil || u.ID != id || u.FirstName != name {
			t.Errorf("GET acknowledged user %s (%s): %s", id, name, r)
		}
	}
	// A create that failed may still have been applied (503 says so), but
	// nothing may appear that was never sent.
	t.Logf("%d users listed", len(listed))
	if len(listed) > total+1 {
		t.Errorf("%d users listed, more than the %d creates sent", len(listed), total+1)
	}
}

// TestSingleNodeRestartKeepsData: a node on the embedded etcd keeps its
// account and records across a SIGTERM and a start on the same data dir,
// and bootstraps only once.
func TestSingleNodeRestartKeepsData(t *testing.T) {
	integration(t)
	t.Run("bootstrap flags", testRestartWithBootstrapFlags)
	t.Run("root init token", testRestartWithInitToken)
}

func testRestartWithBootstrapFlags(t *testing.T) {
	dir := t.TempDir()
	root := newRootKey(t)
	w := startWarden(t, "warden", filepath.Join(dir, "data"), root.bootstrapFlags(t, dir)...)
	w.waitReady(t, 0)
	acc := w.servingAccount(t)
	if !model.ValidID(model.AccountPrefix, acc) {
		t.Fatalf("serving account %q", acc)
	}
	if n := len(w.logLines("bootstrapped a new store")); n != 1 {
		t.Fatalf("the first start logged %d bootstraps, want 1", n)
	}
	rootTok := root.token(t, w.base)
	alice := newAgentKey(t, usersIssuer, "alice", "k1")
	svc := &agentKey{issuer: usersIssuer, subject: "svc", keyID: alice.keyID, key: alice.key}
	addIssuer(t, w, rootTok, acc, alice)
	var user, client struct {
		ID string `json:"id"`
	}
	w.mustCall(t, http.MethodPost, "/v1/account/"+acc+"/user", rootTok,
		userBody("Alice", alice, "function:get", "/account/"+acc+"/"), &user)
	r := w.mustCall(t, http.MethodPost, "/v1/account/"+acc+"/client", rootTok, map[string]any{
		"displayName": "svc",
		"identities":  []map[string]string{svc.identity()},
		"access":      map[string]any{"allow": []map[string]string{{"action": "function:*", "resource": "/account/" + acc + "/"}}},
	}, &client)
	lastRev := revision(t, r)

	paths := []string{
		"/v1/account/" + acc + "/issuer/" + url.PathEscape(usersIssuer),
		"/v1/account/" + acc + "/issuer/" + url.PathEscape(root.issuer),
		"/v1/account/" + acc + "/user/" + user.ID,
		"/v1/account/" + acc + "/client/" + client.ID,
		"/v1/account/" + acc + "/me",
	}
	before := map[string]any{}
	for _, p := range paths {
		var v any
		w.mustCall(t, http.MethodGet, p, rootTok, nil, &v)
		before[p] = v
	}

	if code := w.stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	w.restart(t)
	w.waitReady(t, lastRev)
	if got := w.servingAccount(t); got != acc {
		t.Fatalf("after the restart the account is %q, want %q", got, acc)
	}
	if n := len(w.logLines("bootstrapped a new store")); n != 0 {
		t.Errorf("the restart bootstrapped again (%d log lines)", n)
	}
	for _, p := range paths {
		var v any
		w.mustCall(t, http.MethodGet, p, rootTok, nil, &v)
		if !reflect.DeepEqual(v, before[p]) {
			t.Errorf("GET %s after the restart: %v; before: %v", p, v, before[p])
		}
	}
	resource := "/account/" + acc + "/subscription/sub-0000000000000001/function/f/"
	if d := w.check(t, alice.token(t, w.base), "function:get", resource, 0); !d.Allow || d.Agent.ID != user.ID {
		t.Errorf("check for the user after the restart: %+v", d)
	}
	if d := w.check(t, svc.token(t, w.base), "function:put", resource, 0); !d.Allow || d.Agent.ID != client.ID || d.Agent.Type != model.AgentClient {
		t.Errorf("check for the client after the restart: %+v", d)
	}
}

func testRestartWithInitToken(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	w := startWarden(t, "warden", data)
	w.waitReady(t, 0)
	acc := w.servingAccount(t)
	file := filepath.Join(data, "root-init-token")
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatalf("the first start wrote no init token: %v", err)
	}
	if mode := fi.Mode(); mode.Perm() != 0o600 || !mode.IsRegular() {
		t.Errorf("%s has mode %v, want -rw-------", file, mode)
	}
	content, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	token, ok := strings.CutSuffix(string(content), "\n")
	parts := strings.Split(token, ".")
	if !ok || strings.ContainsAny(token, "\r\n ") || len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		t.Fatalf("%s holds %q, want a JWT and a newline", file, content)
	}
	var claims struct {
		AgentID string `json:"agentId"`
		Profile struct {
			Account string `json:"account"`
		} `json:"profile"`
	}
	if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil || json.Unmarshal(raw, &claims) != nil {
		t.Errorf("the init token's claims do not decode: %q", parts[1])
	} else if !model.ValidID(model.ClientPrefix, claims.AgentID) || claims.Profile.Account != acc {
		t.Errorf("the init token is for agent %q of account %q; want the root client of %s", claims.AgentID, claims.Profile.Account, acc)
	}
	if n := len(w.logLines("bootstrapped a new store")); n != 1 {
		t.Errorf("the first start logged %d bootstraps, want 1", n)
	}
	if n := len(w.logLines("wrote the root client's init token; enroll a key with it within 8h")); n != 1 {
		t.Errorf("the first start logged writing the token %d times, want 1", n)
	}
	if strings.Contains(w.out.String(), parts[2]) {
		t.Errorf("the log holds the init token")
	}

	if code := w.stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	w.restart(t)
	w.waitReady(t, 0)
	if got := w.servingAccount(t); got != acc {
		t.Errorf("after the restart the account is %q, want %q", got, acc)
	}
	if n := len(w.logLines("bootstrapped a new store")) + len(w.logLines("wrote the root client's init token; enroll a key with it within 8h")); n != 0 {
		t.Errorf("the restart bootstrapped again or rewrote the token (%d log lines)", n)
	}
	fi2, err := os.Stat(file)
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	content2, _ := os.ReadFile(file)
	if !bytes.Equal(content2, content) || !fi2.ModTime().Equal(fi.ModTime()) || fi2.Mode() != fi.Mode() {
		t.Errorf("the restart changed %s: %q (%v, %v), was %q (%v, %v)", file, content2, fi2.Mode(), fi2.ModTime(), content, fi.Mode(), fi.ModTime())
	}

	// Once the token is used, its file goes.
	c := newCLI(t)
	c.must("init", token, "--base-url", w.url)
	eventually(t, 10*time.Second, "the used root init token's file removed", func() (bool, string) {
		_, err := os.Stat(file)
		return errors.Is(err, os.ErrNotExist), fmt.Sprint(err)
	})
	if n := len(w.logLines("removed the root init token's file: the token was used")); n != 1 {
		t.Errorf("the removal was logged %d times, want 1", n)
	}
}

// TestFailedStartLeavesNothing: a start that fails, because a port is
// taken or the bootstrap flags are bad, leaves no data directory (no
// store, no init token) behind, and exits non-zero.
func TestFailedStartLeavesNothing(t *testing.T) {
	integration(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"API port taken", []string{"--listen", taken.Addr().String()}, "address already in use"},
		{"diagnostics port taken", []string{"--diag-listen", taken.Addr().String()}, "address already in use"},
		{"bad bootstrap key", []string{"--bootstrap-issuer", "https://i", "--bootstrap-subject", "s", "--bootstrap-public-key", bad}, "--bootstrap-public-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			args := append([]string{"serve", "--listen", "127.0.0.1:0", "--diag-listen", "127.0.0.1:0", "--data-dir", data}, tc.args...)
			p := startProc(t, "warden", wardenBinary(t), args...)
			select {
			case <-p.done:
			case <-time.After(startTimeout):
				t.Fatal("warden did not exit")
			}
			if p.err == nil || !strings.Contains(p.out.String(), tc.want) {
				t.Errorf("exit %v; want a failure saying %q:\n%s", p.err, tc.want, p.out.String())
			}
			if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the failed start left %s behind: %v", data, err)
			}
		})
	}
}

// TestSidecarAnswersWhileEtcdDown: with every etcd member killed, a sidecar
// keeps answering checks from its last state and reports itself stale on
// /readyz; when etcd is back it is ready again and follows new writes.
func TestSidecarAnswersWhileEtcdDown(t *testing.T) {
	integration(t)
	cluster, root, acc, a, b := adminAndSidecar(t, 1, true)

	rootTok := root.token(t, a.base)
	alice := newAgentKey(t, usersIssuer, "alice", "k1")
	addIssuer(t, a, rootTok, acc, alice)
	r := a.mustCall(t, http.MethodPost, "/v1/account/"+acc+"/user", rootTok,
		userBody("Alice", alice, "function:get", "/account/"+acc+"/"), nil)
	rev := revision(t, r)
	aliceTok := alice.token(t, a.base)
	resource := "/account/" + acc + "/subscription/sub-0000000000000001/function/f/"
	if d := b.check(t, aliceTok, "function:get", resource, rev); !d.Allow {
		t.Fatalf("check on the sidecar before the outage: %+v", d)
	}

	for _, m := range cluster.members {
		m.proc.kill()
	}
	allowed := func(when string) {
		t.Helper()
		d := b.check(t, aliceTok, "function:get", resource, 0)
		if !d.Allow || d.Status != http.StatusOK || d.Revision < rev {
			t.Fatalf("check on the sidecar %s: %+v; want allowed at revision %d or later", when, d, rev)
		}
	}
	allowed("just after etcd was killed")
	// An admin write while etcd is down answers 503 in bounded time, saying
	// its outcome is unknown, instead of hanging.
	type writeResult struct {
		r    response
		err  error
		took time.Duration
	}
	writeDone := make(chan writeResult, 1)
	go func() {
		start := time.Now()
		r, err := httpDo(http.MethodPost, a.url+"/v1/account/"+acc+"/user", rootTok, map[string]any{"firstName": "During"})
		writeDone <- writeResult{r, err, time.Since(start)}
	}()
	eventually(t, 15*time.Second, "the sidecar's /readyz says stale", func() (bool, string) {
		code, st, err := b.readyz()
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusServiceUnavailable && !st.Ready && strings.Contains(st.Reason, "stale"), fmt.Sprintf("%d %+v", code, st)
	})
	allowed("while etcd is down")
	// A revision the sidecar cannot reach now is refused, in bounded time.
	rr := b.call(t, http.MethodPost, "/v1/check", aliceTok, map[string]any{"action": "function:get", "resource": resource, "minRevision": rev + 1000})
	if rr.status != http.StatusServiceUnavailable {
		t.Errorf("check at an unreachable minRevision while etcd is down: %s; want 503", rr)
	}

	w := <-writeDone
	if w.err != nil || w.r.status != http.StatusServiceUnavailable || !strings.Contains(string(w.r.body), "may or may not have been applied") {
		t.Errorf("an admin write while etcd is down (after %s): %v %s; want 503 saying the outcome is unknown", w.took, w.err, w.r)
	}

	for _, m := range cluster.members {
		m.start(t, cluster)
	}
	cluster.waitHealthy(t)
	b.waitReady(t, rev)
	allowed("after etcd is back")

	// The sidecar follows writes made after the outage.
	bob := newAgentKey(t, usersIssuer, "bob", "k1")
	bob.key = alice.key
	var bobRev int64
	eventually(t, startTimeout, "a create on A after the outage succeeds", func() (bool, string) {
		r, err := httpDo(http.MethodPost, a.url+"/v1/account/"+acc+"/user", rootTok, userBody("Bob", bob, "function:get", "/account/"+acc+"/"))
		if err != nil {
			return false, err.Error()
		}
		if r.status != http.StatusOK {
			return false, r.String()
		}
		bobRev = revision(t, r)
		return true, ""
	})
	if d := b.check(t, bob.token(t, a.base), "function:get", resource, bobRev); !d.Allow {
		t.Fatalf("check on the sidecar for a user created after the outage: %+v", d)
	}
}

// adminAndSidecar starts an etcd cluster of n members, warden A (role all,
// bootstrapped with a fresh account and the returned root key) and warden
// B (role sidecar, accepting A's audience, given --account only when
// bAccount, and bExtra), and waits until both are ready.
func adminAndSidecar(t *testing.T, n int, bAccount bool, bExtra ...string) (*etcdCluster, *agentKey, string, *wardenProc, *wardenProc) {
	t.Helper()
	cluster := startEtcd(t, n)
	dir := t.TempDir()
	root := newRootKey(t)
	acc := model.NewID(model.AccountPrefix)
	a := startWarden(t, "warden A", filepath.Join(dir, "a"), append([]string{
		"--role", "all", "--etcd-endpoints", cluster.endpoints(), "--account", acc}, root.bootstrapFlags(t, dir)...)...)
	bFlags := []string{"--role", "sidecar", "--etcd-endpoints", cluster.endpoints(), "--audience", a.base}
	if bAccount {
		bFlags = append(bFlags, "--account", acc)
	}
	bFlags = append(bFlags, bExtra...)
	b := startWarden(t, "warden B", filepath.Join(dir, "b"), bFlags...)
	a.waitReady(t, 0)
	b.waitReady(t, 0)
	return cluster, root, acc, a, b
}
