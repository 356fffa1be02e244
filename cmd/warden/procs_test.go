//go:build linux

package main

// Helpers of the process-level integration tests: the warden binary built
// once, warden processes on loopback ports they choose themselves and etcd
// processes on unix sockets, killed when the test ends, readiness polling,
// admin and check calls, and tokens.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wardenauthz/warden/internal/testkit"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

// Bounds of the waits in these tests. They are generous because the CI
// machine is small; a healthy run never comes near them.
const (
	startTimeout   = 45 * time.Second // a process until it is ready
	stopTimeout    = 25 * time.Second // a process after SIGTERM (warden drains for up to 10s)
	requestTimeout = 20 * time.Second // one HTTP request
	pollInterval   = 100 * time.Millisecond
)

var (
	buildOnce sync.Once
	buildDir  string
	wardenBin string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// integration skips the test under -short: these tests start processes.
func integration(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("process-level integration test; skipped with -short")
	}
}

// wardenBinary builds the warden command once per test binary, into a
// temporary directory that TestMain removes.
func wardenBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "warden-it-")
		if buildErr != nil {
			return
		}
		goCmd, err := exec.LookPath("go")
		if err != nil {
			goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bin := filepath.Join(buildDir, "warden")
		out, err := exec.CommandContext(ctx, goCmd, "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		wardenBin = bin
	})
	if buildErr != nil {
		t.Fatalf("building warden: %v", buildErr)
	}
	return wardenBin
}

// etcdBinary returns the path of the etcd server; a missing binary skips
// the test on a developer's machine and fails it in CI (where .ci/run
// installs it).
func etcdBinary(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("etcd is not on PATH (CI must install it, see .ci/run): %v", err)
		}
		t.Skipf("etcd is not on PATH (apt-get install etcd-server): %v", err)
	}
	return path
}

// logBuffer collects a process's output; it is safe for concurrent use.
type logBuffer = testkit.Buffer

// proc is a child process whose output is captured, logged when the test
// fails, and which is killed when the test ends.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{}
	err  error // the Wait error, once done is closed
}

// childEnv is the test's environment without its WARDEN_* variables, so
// that a developer's settings do not leak into the processes it starts.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WARDEN_") {
			env = append(env, kv)
		}
	}
	return env
}

// startProc starts bin with args in childEnv.
func startProc(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	return startProcIn(t, "", name, bin, args...)
}

// startProcIn starts bin with args in childEnv, in directory dir ("" for
// the test's own).
func startProcIn(t *testing.T, dir, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &logBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.WaitDelay = 5 * time.Second
	// Dies with the test binary, even when a test timeout panics before
	// the cleanups run.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.cmd.Env = childEnv()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("---- output of %s (%s) ----\n%s", p.name, strings.Join(args, " "), tail(p.out.String(), 24<<10))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// exited says whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop sends SIGTERM and returns the exit code, failing the test if the
// process does not end within stopTimeout.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signalling %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.kill()
		t.Fatalf("%s did not exit within %s of SIGTERM", p.name, stopTimeout)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	default:
		t.Fatalf("waiting for %s: %v", p.name, p.err)
		return -1
	}
}

// logLines returns the process's JSON log lines whose msg is msg.
func (p *proc) logLines(msg string) []map[string]any {
	var found []map[string]any
	for _, line := range strings.Split(p.out.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			found = append(found, rec)
		}
	}
	return found
}

// eventually polls cond until it holds, failing the test after timeout with
// the last thing cond said.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %s; last: %s", what, timeout, last)
		}
		time.Sleep(pollInterval)
	}
}

// ---- etcd ----

// etcdMember is one etcd server process of a cluster. Its client and peer
// URLs are unix sockets in the cluster's directory (etcd wants them as
// unix://NAME:PORT, a socket file NAME:PORT in its working directory), so
// no TCP port is chosen and then bound later, which another process could
// take in between.
type etcdMember struct {
	name, dataDir string
	clientURL     string // as etcd's flags take it
	sock          string // the client socket's path
	peerSock      string // the peer socket's path
	args          []string
	proc          *proc
	http          *http.Client // talks to the client socket
}

type etcdCluster struct {
	bin     string
	dir     string
	members []*etcdMember
}

// startEtcd starts an n-member etcd cluster on unix sockets, with data in
// a short temporary directory (socket paths are limited to 108 bytes), and
// waits until every member is healthy.
func startEtcd(t *testing.T, n int) *etcdCluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "etcd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &etcdCluster{bin: etcdBinary(t), dir: dir}
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("m%d=unix://p%d:1", i, i))
	}
	token := "warden-it-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := range n {
		sock := filepath.Join(dir, fmt.Sprintf("c%d:1", i))
		m := &etcdMember{
			peerSock:  filepath.Join(dir, fmt.Sprintf("p%d:1", i)),
			name:      fmt.Sprintf("m%d", i),
			dataDir:   filepath.Join(dir, fmt.Sprintf("m%d", i)),
			clientURL: fmt.Sprintf("unix://c%d:1", i),
			sock:      sock,
			http: &http.Client{Timeout: requestTimeout, Transport: &http.Transport{
				DisableKeepAlives: true,
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, "unix", sock)
				},
			}},
		}
		peerURL := fmt.Sprintf("unix://p%d:1", i)
		m.args = []string{
			"--name", m.name,
			"--data-dir", m.dataDir,
			"--listen-client-urls", m.clientURL,
			"--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", peerURL,
			"--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
		}
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.start(t, c)
	}
	c.waitHealthy(t)
	return c
}

// start starts the member, first removing the sockets a killed one left:
// etcd does not, and would not bind them.
func (m *etcdMember) start(t *testing.T, c *etcdCluster) {
	t.Helper()
	if m.proc != nil && !m.proc.exited() {
		t.Fatalf("etcd %s is still running", m.name)
	}
	for _, sock := range []string{m.sock, m.peerSock} {
		if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	m.proc = startProcIn(t, c.dir, "etcd "+m.name, c.bin, m.args...)
}

// do sends a request to the member's HTTP gateway.
func (m *etcdMember) do(method, path string, body any) (response, error) {
	return httpDoWith(m.http, method, "http://etcd"+path, "", body)
}

// endpoints is the --etcd-endpoints value for the whole cluster.
func (c *etcdCluster) endpoints() string {
	urls := make([]string, len(c.members))
	for i, m := range c.members {
		urls[i] = "unix://" + m.sock
	}
	return strings.Join(urls, ",")
}

// waitHealthy waits until every running member reports health (a leader,
// no alarms).
func (c *etcdCluster) waitHealthy(t *testing.T) {
	t.Helper()
	for _, m := range c.members {
		if m.proc.exited() {
			continue
		}
		eventually(t, startTimeout, "etcd "+m.name+" healthy", func() (bool, string) {
			if m.proc.exited() {
				t.Fatalf("etcd %s exited: %v", m.name, m.proc.err)
			}
			r, err := m.do(http.MethodGet, "/health", nil)
			if err != nil {
				return false, err.Error()
			}
			var h struct{ Health string }
			_ = json.Unmarshal(r.body, &h)
			return r.status == http.StatusOK && h.Health == "true", string(r.body)
		})
	}
}

// leader returns the index of the member that is the raft leader, or -1
// when no member says so.
func (c *etcdCluster) leader() int {
	for i, m := range c.members {
		r, err := m.do(http.MethodPost, "/v3/maintenance/status", struct{}{})
		if err != nil || r.status != http.StatusOK {
			continue
		}
		var st struct {
			Header struct {
				MemberID string `json:"member_id"`
			} `json:"header"`
			Leader string `json:"leader"`
		}
		if json.Unmarshal(r.body, &st) == nil && st.Leader != "" && st.Leader == st.Header.MemberID {
			return i
		}
	}
	return -1
}

// ---- warden ----

// wardenProc is a running `warden serve`.
type wardenProc struct {
	*proc
	args    []string
	listen  string // host:port of the admin and check APIs
	diag    string // host:port of /readyz
	url     string // http:// + listen
	base    string // the base URL: the tokens' audience
	dataDir string
}

// startWarden starts `warden serve` on ports the system chooses, with data
// in dataDir and the extra flags, and waits until it says where it
// listens (it binds first thing), not until it is ready.
func startWarden(t *testing.T, name, dataDir string, extra ...string) *wardenProc {
	t.Helper()
	w := &wardenProc{dataDir: dataDir}
	w.args = append([]string{"serve", "--listen", "127.0.0.1:0", "--diag-listen", "127.0.0.1:0", "--data-dir", dataDir}, extra...)
	w.proc = startProc(t, name, wardenBinary(t), w.args...)
	w.learnAddresses(t)
	return w
}

// learnAddresses reads the bound addresses and the base URL from the
// "listening" log line.
func (w *wardenProc) learnAddresses(t *testing.T) {
	t.Helper()
	eventually(t, startTimeout, w.name+` logs "listening"`, func() (bool, string) {
		if w.exited() {
			t.Fatalf("%s exited before it listened: %v", w.name, w.err)
		}
		lines := w.logLines("listening")
		if len(lines) == 0 {
			return false, "no line yet"
		}
		w.listen, _ = lines[0]["listen"].(string)
		w.diag, _ = lines[0]["diag_listen"].(string)
		w.base, _ = lines[0]["base_url"].(string)
		return w.listen != "" && w.diag != "" && w.base != "", fmt.Sprint(lines[0])
	})
	w.url = "http://" + w.listen
}

// restart starts the same command line again (same data and flags, and
// the first start's base URL, so that tokens minted for it still pass) on
// new ports, after the process has exited.
func (w *wardenProc) restart(t *testing.T) {
	t.Helper()
	if !w.exited() {
		t.Fatalf("%s is still running", w.name)
	}
	if !slices.Contains(w.args, "--base-url") {
		w.args = append(w.args, "--base-url", w.base)
	}
	w.proc = startProc(t, w.name, wardenBinary(t), w.args...)
	w.learnAddresses(t)
}

// readyStatus is the body of /readyz.
type readyStatus struct {
	Ready    bool   `json:"ready"`
	Reason   string `json:"reason"`
	Revision int64  `json:"revision"`
}

func (w *wardenProc) readyz() (int, readyStatus, error) {
	r, err := httpDo(http.MethodGet, "http://"+w.diag+"/readyz", "", nil)
	if err != nil {
		return 0, readyStatus{}, err
	}
	var st readyStatus
	if err := json.Unmarshal(r.body, &st); err != nil {
		return r.status, st, fmt.Errorf("/readyz body %q: %v", r.body, err)
	}
	return r.status, st, nil
}

// waitReady waits until /readyz answers 200 with a revision of at least
// minRev, failing at once if the process exits.
func (w *wardenProc) waitReady(t *testing.T, minRev int64) readyStatus {
	t.Helper()
	var st readyStatus
	eventually(t, startTimeout, w.name+" ready", func() (bool, string) {
		if w.exited() {
			t.Fatalf("%s exited: %v", w.name, w.err)
		}
		code, s, err := w.readyz()
		if err != nil {
			return false, err.Error()
		}
		st = s
		return code == http.StatusOK && s.Ready && s.Revision >= minRev, fmt.Sprintf("%d %+v", code, s)
	})
	return st
}

// servingAccount returns the account of the "warden serving" log line,
// which is written just after the listeners are up (so maybe just after
// /readyz first answers).
func (w *wardenProc) servingAccount(t *testing.T) string {
	t.Helper()
	var acc string
	eventually(t, 5*time.Second, w.name+` logs "warden serving" once`, func() (bool, string) {
		lines := w.logLines("warden serving")
		if len(lines) != 1 {
			return false, fmt.Sprintf("%d lines", len(lines))
		}
		acc, _ = lines[0]["account"].(string)
		return true, ""
	})
	return acc
}

// ---- HTTP ----

// httpClient opens a connection per request, so that nothing is reused
// across a restart of a process on the same port.
var httpClient = &http.Client{
	Timeout:   requestTimeout,
	Transport: &http.Transport{DisableKeepAlives: true},
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body)) }

// httpDo sends body (when not nil) as JSON with token (when not "") as
// bearer.
func httpDo(method, url, token string, body any) (response, error) {
	return httpDoWith(httpClient, method, url, token, body)
}

// httpDoWith is httpDo with another client.
func httpDoWith(client *http.Client, method, url, token string, body any) (response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// call sends an API request to w and fails the test on a transport error.
func (w *wardenProc) call(t *testing.T, method, path, token string, body any) response {
	t.Helper()
	r, err := httpDo(method, w.url+path, token, body)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, w.name, err)
	}
	return r
}

// mustCall is call that also requires 200 and decodes the body into out
// (when not nil).
func (w *wardenProc) mustCall(t *testing.T, method, path, token string, body, out any) response {
	t.Helper()
	r := w.call(t, method, path, token, body)
	if r.status != http.StatusOK {
		t.Fatalf("%s %s on %s: %s", method, path, w.name, r)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("%s %s on %s: decoding %q: %v", method, path, w.name, r.body, err)
		}
	}
	return r
}

// revision is the Warden-Revision header of a write's response.
func revision(t *testing.T, r response) int64 {
	t.Helper()
	rev, err := strconv.ParseInt(r.header.Get("Warden-Revision"), 10, 64)
	if err != nil || rev <= 0 {
		t.Fatalf("Warden-Revision header %q of %s", r.header.Get("Warden-Revision"), r)
	}
	return rev
}

// check asks w's check API whether token may do action on resource.
func (w *wardenProc) check(t *testing.T, token, action, resource string, minRev int64) model.Decision {
	t.Helper()
	body := map[string]any{"action": action, "resource": resource}
	if minRev > 0 {
		body["minRevision"] = minRev
	}
	var d model.Decision
	w.mustCall(t, http.MethodPost, "/v1/check", token, body, &d)
	return d
}

// ---- identities and tokens ----

// agentKey is an identity (issuer, subject) with the key that signs its
// tokens.
type agentKey struct {
	issuer, subject, keyID string
	key                    ed25519.PrivateKey
}

func newAgentKey(t *testing.T, issuer, subject, keyID string) *agentKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &agentKey{issuer: issuer, subject: subject, keyID: keyID, key: priv}
}

func (k *agentKey) publicPEM(t *testing.T) string {
	t.Helper()
	s, err := sdk.PublicKeyPEM(k.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// token mints a token of this identity for audience.
func (k *agentKey) token(t *testing.T, audience string) string {
	t.Helper()
	tok, err := sdk.MintToken(sdk.TokenSpec{PrivateKey: k.key, KeyID: k.keyID, Issuer: k.issuer, Subject: k.subject, Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// identity is this identity as it appears in a user's identities.
func (k *agentKey) identity() map[string]string {
	return map[string]string{"issuerId": k.issuer, "subject": k.subject}
}

// bootstrapFlags writes k's public key to a file in dir and returns the
// flags that make k the root client's identity.
func (k *agentKey) bootstrapFlags(t *testing.T, dir string) []string {
	t.Helper()
	file := filepath.Join(dir, "bootstrap-key.pem")
	if err := os.WriteFile(file, []byte(k.publicPEM(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--bootstrap-issuer", k.issuer, "--bootstrap-subject", k.subject,
		"--bootstrap-public-key", file, "--bootstrap-key-id", k.keyID}
}

// newRootKey is the identity given to the root client by the bootstrap
// flags.
func newRootKey(t *testing.T) *agentKey {
	return newAgentKey(t, "https://root.warden.test", "root", "root-k1")
}

// addIssuer registers k's issuer in acc with its public key, as root.
func addIssuer(t *testing.T, w *wardenProc, rootToken, acc string, k *agentKey) response {
	t.Helper()
	body := map[string]any{"publicKeys": []map[string]string{{"keyId": k.keyID, "publicKey": k.publicPEM(t)}}}
	return w.mustCall(t, http.MethodPost, "/v1/account/"+acc+"/issuer/"+url.PathEscape(k.issuer), rootToken, body, nil)
}

// userBody is the body of a user with k's identity and one grant.
func userBody(first string, k *agentKey, action, resource string) map[string]any {
	b := map[string]any{"firstName": first}
	if k != nil {
		b["identities"] = []map[string]string{k.identity()}
	}
	if action != "" {
		b["access"] = map[string]any{"allow": []map[string]string{{"action": action, "resource": resource}}}
	}
	return b
}
