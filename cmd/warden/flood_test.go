//go:build linux

package main

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestConnectionFlood: a node whose file descriptor limit is 1024 takes
// 1500 idle connections that send nothing, and 20 keep-alive connections
// left idle, and stays up: its API listener holds no more than it can
// (evicting the connections idle the longest), so the store keeps its
// descriptors, and a fresh client's admin write and check both succeed. A
// client that stalls in the middle of a body is cut off by --read-timeout.
func TestConnectionFlood(t *testing.T) {
	integration(t)
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) is not installed")
	}
	dir := t.TempDir()
	root := newRootKey(t)
	w := &wardenProc{dataDir: filepath.Join(dir, "data")}
	w.args = append([]string{"--nofile=1024:1024", wardenBinary(t), "serve", "--listen", "127.0.0.1:0", "--diag-listen", "127.0.0.1:0",
		"--data-dir", w.dataDir, "--read-timeout", "2s"}, root.bootstrapFlags(t, dir)...)
	w.proc = startProc(t, "warden", prlimit, w.args...)
	w.learnAddresses(t)
	w.waitReady(t, 0)
	acc := w.servingAccount(t)
	if n := len(w.logLines("the file descriptor limit is too low for --max-connections; the API listener holds fewer")); n != 1 {
		t.Errorf("the lowered cap was logged %d times, want 1", n)
	}

	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for i := range 1500 {
		c, err := net.DialTimeout("tcp", w.listen, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		flood = append(flood, c)
	}
	// Keep-alive connections that made one request and wait for the next.
	keepAlive := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 20}}
	for range 20 {
		resp, err := keepAlive.Get(w.url + "/v1/account/" + acc + "/me")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if w.exited() {
		t.Fatalf("warden exited under the flood: %v", w.err)
	}

	rootTok := root.token(t, w.base)
	r := w.mustCall(t, http.MethodPost, "/v1/account/"+acc+"/user", rootTok, map[string]any{"firstName": "After", "access": map[string]any{
		"allow": []map[string]string{{"action": "function:get", "resource": "/account/" + acc + "/"}}}}, nil)
	if d := w.check(t, rootTok, "function:get", "/account/"+acc+"/x/", revision(t, r)); !d.Allow {
		t.Fatalf("a check by a fresh client during the flood: %+v", d)
	}

	metrics, err := httpDo(http.MethodGet, "http://"+w.diag+"/metrics", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	open := metricValue(t, metrics.body, `warden_http_connections{listener="api"}`)
	capped := metricValue(t, metrics.body, `warden_http_connections_max{listener="api"}`)
	evicted := metricValue(t, metrics.body, `warden_http_connections_evicted_total{listener="api"}`)
	t.Logf("held %v of at most %v API connections; %v evicted", open, capped, evicted)
	if capped >= 1024 || open > capped || evicted < 1500-capped {
		t.Errorf("the API listener held %v connections (cap %v) and evicted %v; want a cap under the fd limit, held, and the rest evicted", open, capped, evicted)
	}

	// A body that stalls is cut off by --read-timeout.
	slow, err := net.Dial("tcp", w.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"action\":")
	_ = slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	buf := make([]byte, 4096)
	for {
		if _, err := slow.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("a stalled body was still open after 30s; --read-timeout is 2s")
			}
			break
		}
	}
	t.Logf("the stalled body was cut off after %s", time.Since(start).Round(100*time.Millisecond))
	if w.exited() {
		t.Fatalf("warden exited: %v", w.err)
	}
	if len(w.logLines("the store failed; exiting so that the process is started again")) != 0 {
		t.Fatal("the store failed under the flood")
	}
}

// metricValue reads one sample of a text exposition.
func metricValue(t *testing.T, body []byte, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in the metrics:\n%s", series, body)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
