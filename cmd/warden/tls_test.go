//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/internal/tlsfiles/tlstest"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sidecar/storage"
)

// pki is a CA and the files of the certificates it signed, in a directory
// of the test's own.
type pki struct {
	ca                  *tlstest.CA
	dir                 string
	caFile              string
	server, client      *tlstest.Pair
	serverCrt, serverKy string
	clientCrt, clientKy string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca := tlstest.NewCA(t, "Warden test CA")
	p := &pki{ca: ca, dir: t.TempDir(),
		server: ca.Issue(t, "warden", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth),
		client: ca.Issue(t, "agent", x509.ExtKeyUsageClientAuth)}
	p.caFile = filepath.Join(p.dir, "ca.crt")
	tlstest.WriteFile(t, p.caFile, ca.PEM)
	p.serverCrt, p.serverKy = filepath.Join(p.dir, "tls.crt"), filepath.Join(p.dir, "tls.key")
	p.server.Write(t, p.serverCrt, p.serverKy)
	p.clientCrt, p.clientKy = filepath.Join(p.dir, "client.crt"), filepath.Join(p.dir, "client.key")
	p.client.Write(t, p.clientCrt, p.clientKy)
	return p
}

// file writes data to a file of mode in the PKI's directory.
func (p *pki) file(t *testing.T, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// httpsClient trusts the PKI's CA and presents cert when it is not nil.
func (p *pki) httpsClient(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: p.ca.Pool()}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: requestTimeout, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

// TestTLSFlagErrors: each bad combination of the TLS flags, and each bad
// file, is a usage error naming the flag and the file, all at once; no
// message holds key material.
func TestTLSFlagErrors(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	other := p.ca.Issue(t, "other", x509.ExtKeyUsageServerAuth)
	missing := filepath.Join(p.dir, "missing.pem")
	garbage := p.file(t, "garbage.pem", []byte("not PEM\n"), 0o600)
	looseKey := p.file(t, "loose.key", p.server.KeyPEM, 0o644)
	otherKey := p.file(t, "other.key", other.KeyPEM, 0o600)
	looseClientKey := p.file(t, "loose-client.key", p.client.KeyPEM, 0o640)
	configFile := p.file(t, "warden.yaml", []byte("tls-cert: "+p.serverCrt+"\ndiag-tls: true\n"), 0o600)
	etcd := []string{"--etcd-endpoints", "https://127.0.0.1:2379"}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"cert without key", []string{"--tls-cert", p.serverCrt}, []string{"tls-cert: give tls-key too, the certificate's private key"}},
		{"key without cert", []string{"--tls-key", p.serverKy}, []string{"tls-key: give tls-cert too"}},
		{"client CA without cert", []string{"--tls-client-ca", p.caFile}, []string{"tls-client-ca: client certificates are verified by a TLS listener; give tls-cert and tls-key too"}},
		{"diag TLS without cert", []string{"--diag-tls"}, []string{"diag-tls: the diagnostics listener serves the certificate of tls-cert"}},
		{"config file", []string{"--config", configFile}, []string{"tls-cert: give tls-key too"}},
		{"missing cert", []string{"--tls-cert", missing, "--tls-key", p.serverKy}, []string{"tls-cert: " + missing + ": no such file or directory"}},
		{"cert not PEM", []string{"--tls-cert", garbage, "--tls-key", p.serverKy}, []string{"tls-cert: " + garbage + ": no PEM certificate in the file"}},
		{"key readable by others", []string{"--tls-cert", p.serverCrt, "--tls-key", looseKey},
			[]string{"tls-key: " + looseKey + ": a private key readable by group or others (mode 0644); run chmod 600 " + looseKey}},
		{"key of another certificate", []string{"--tls-cert", p.serverCrt, "--tls-key", otherKey},
			[]string{"tls-key: " + otherKey + ": tls: private key does not match public key (certificate " + p.serverCrt + ")"}},
		{"key not PEM", []string{"--tls-cert", p.serverCrt, "--tls-key", garbage}, []string{"tls-key: " + garbage + ": tls: failed to find any PEM data in key input"}},
		{"client CA not PEM", []string{"--tls-cert", p.serverCrt, "--tls-key", p.serverKy, "--tls-client-ca", garbage}, []string{"tls-client-ca: " + garbage + ": no PEM certificate in the file"}},
		{"etcd TLS without endpoints", []string{"--etcd-cacert", p.caFile, "--etcd-cert", p.clientCrt}, []string{"etcd-cacert, etcd-cert: TLS to an external etcd cluster; give etcd-endpoints too"}},
		{"etcd cert without key", append([]string{"--etcd-cert", p.clientCrt}, etcd...), []string{"etcd-cert and etcd-key go together"}},
		{"etcd over http", []string{"--etcd-endpoints", "http://127.0.0.1:2379", "--etcd-cacert", p.caFile}, []string{"etcd-endpoints: http://127.0.0.1:2379 is reached in plain text, without the TLS of etcd-cacert; write https://"}},
		{"etcd key readable by group", append([]string{"--etcd-cert", p.clientCrt, "--etcd-key", looseClientKey}, etcd...),
			[]string{"etcd-key: " + looseClientKey + ": a private key readable by group or others (mode 0640); run chmod 600 " + looseClientKey}},
		{"etcd CA not PEM", append([]string{"--etcd-cacert", garbage}, etcd...), []string{"etcd-cacert: " + garbage + ": no PEM certificate in the file"}},
		{"every problem at once", append([]string{"--tls-cert", garbage, "--tls-key", looseKey, "--tls-client-ca", missing, "--etcd-cacert", missing}, etcd...), []string{
			"tls-cert: " + garbage + ": no PEM certificate", "tls-key: " + looseKey + ": a private key readable", "tls-client-ca: " + missing + ": no such file", "etcd-cacert: " + missing + ": no such file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			args := append([]string{"serve", "--listen", "127.0.0.1:0", "--diag-listen", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data")}, tc.args...)
			code := run(ctx, args, &out, &out)
			for _, want := range tc.want {
				if code != exitUsage || !strings.Contains(out.String(), want) {
					t.Errorf("exit %d, output %q; want %d containing %q", code, out.String(), exitUsage, want)
				}
			}
			for _, key := range [][]byte{p.server.KeyPEM, p.client.KeyPEM, other.KeyPEM} {
				if strings.Contains(out.String(), "PRIVATE KEY") || strings.Contains(out.String(), string(key[40:90])) {
					t.Errorf("the output holds key material: %q", out.String())
				}
			}
		})
	}
}

// TestServeTLS: a node with --tls-cert, --tls-key, --tls-client-ca and
// --diag-tls serves its API over mutual TLS (a client of the CA is served,
// one without a certificate refused, plain HTTP refused), its diagnostics
// over TLS (probed by `warden health`), serves renewed files without a
// restart, and never logs key material. A node without a client CA is
// managed by the CLI, which trusts the CA given to `warden init --ca`.
func TestServeTLS(t *testing.T) {
	integration(t)
	p := newPKI(t)
	root := newRootKey(t)
	dir := t.TempDir()
	tlsFlags := []string{"--tls-cert", p.serverCrt, "--tls-key", p.serverKy}
	w := startWarden(t, "warden mtls", filepath.Join(dir, "mtls"), append(append(root.bootstrapFlags(t, dir), tlsFlags...),
		"--tls-client-ca", p.caFile, "--diag-tls")...)
	if !strings.HasPrefix(w.base, "https://127.0.0.1:") {
		t.Fatalf("the base URL is %q; want https://", w.base)
	}
	health := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := run(context.Background(), append([]string{"health"}, args...), &out, &out)
		return code, out.String()
	}
	diag := "https://" + w.diag
	eventually(t, startTimeout, "warden health over TLS", func() (bool, string) {
		if w.exited() {
			t.Fatalf("warden exited: %v", w.err)
		}
		code, out := health("--addr", diag, "--ca", p.caFile)
		return code == exitOK && strings.HasPrefix(out, "ready at revision"), out
	})
	if code, out := health("--addr", w.diag, "--live"); code != exitServer || !strings.Contains(out, "serves TLS (--diag-tls): probe https://"+w.diag) {
		t.Errorf("health over plain HTTP of a TLS listener: %d %q", code, out)
	}
	if code, out := health("--addr", diag); code != exitServer || !strings.Contains(out, "certificate signed by unknown authority") {
		t.Errorf("health without the CA: %d %q", code, out)
	}
	t.Setenv("WARDEN_DIAG_TLS", "true")
	t.Setenv("WARDEN_CA", p.caFile)
	if code, out := health("--addr", w.diag, "--live"); code != exitOK || out != "alive\n" {
		t.Errorf("health with WARDEN_DIAG_TLS and WARDEN_CA: %d %q", code, out)
	}
	t.Setenv("WARDEN_DIAG_TLS", "")
	t.Setenv("WARDEN_CA", "")

	acc := w.servingAccount(t)
	api := "https://" + w.listen
	token := sdk.StaticToken(root.token(t, w.base))
	clientCert := p.client.TLS(t)
	c, err := sdk.NewClient(sdk.Config{BaseURL: api, Account: acc, Token: token, HTTPClient: p.httpsClient(&clientCert)})
	if err != nil {
		t.Fatal(err)
	}
	if me, err := c.Me(t.Context()); err != nil {
		t.Fatalf("the root client with a client certificate: %v", err)
	} else if d, err := c.Check(t.Context(), "function:get", "/account/"+acc+"/fn/", 0); err != nil || !d.Allow {
		t.Fatalf("check as %s: %+v %v", me.ID, d, err)
	}
	// A client without a certificate is refused. Over TLS 1.3 it learns
	// so after its side of the handshake, from the server's alert; a
	// request written meanwhile may meet a reset instead, so the alert is
	// read on a connection that writes nothing.
	conn, err := tls.Dial("tcp", w.listen, &tls.Config{RootCAs: p.ca.Pool(), MinVersion: tls.VersionTLS12})
	if err == nil {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Fatalf("a client without a certificate: %v; want the handshake refused", err)
	}
	if r, err := httpDo(http.MethodGet, "http://"+w.listen+"/v1/account/"+acc+"/me", "", nil); err != nil || r.status != http.StatusBadRequest {
		t.Fatalf("plain HTTP to the TLS listener: %v %v; want 400", r, err)
	}

	// The API listener's connections are counted over TLS too: once the
	// clients (which keep none alive) are done, none is open.
	eventually(t, 10*time.Second, "no API connection open", func() (bool, string) {
		r, err := httpDoWith(p.httpsClient(nil), http.MethodGet, diag+"/metrics", "", nil)
		if err != nil {
			return false, err.Error()
		}
		v := metricValue(t, r.body, `warden_http_connections{listener="api"}`)
		return v == 0, fmt.Sprint(v)
	})

	// Renewed files are served without a restart.
	renewed := p.ca.Issue(t, "warden renewed", x509.ExtKeyUsageServerAuth)
	renewed.Write(t, p.serverCrt, p.serverKy)
	eventually(t, 15*time.Second, "the renewed certificate served", func() (bool, string) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", w.listen, &tls.Config{RootCAs: p.ca.Pool(), Certificates: []tls.Certificate{clientCert}})
		if err != nil {
			return false, err.Error()
		}
		defer conn.Close()
		leaf := conn.ConnectionState().PeerCertificates[0]
		return leaf.SerialNumber.Cmp(renewed.Cert.SerialNumber) == 0, leaf.Subject.String()
	})
	if _, err := c.Me(t.Context()); err != nil || w.exited() {
		t.Fatalf("after the renewal: %v (exited: %v)", err, w.exited())
	}
	if len(w.logLines("reloaded the TLS files")) == 0 {
		t.Error("the reload was not logged")
	}
	for _, key := range [][]byte{p.server.KeyPEM, renewed.KeyPEM} {
		if out := w.out.String(); strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, string(key[40:90])) {
			t.Fatal("the log holds key material")
		}
	}

	// The CLI against a TLS node without a client CA.
	cl := newCLI(t)
	plain := startWarden(t, "warden tls", filepath.Join(dir, "tls"), tlsFlags...)
	plain.waitReady(t, 0)
	var initToken []byte
	eventually(t, startTimeout, "the root init token written", func() (bool, string) {
		initToken, err = os.ReadFile(filepath.Join(plain.dataDir, "root-init-token"))
		return err == nil, fmt.Sprint(err)
	})
	tok := strings.TrimSpace(string(initToken))
	if r := cl.run("init", tok, "--ca", missingPath(p)); r.code != exitUsage || !strings.Contains(r.stderr, "--ca: the CA file "+missingPath(p)) {
		t.Fatalf("init with a missing CA file: %+v", r)
	}
	if r := cl.run("init", tok); r.code != exitServer || !strings.Contains(r.stderr, "unknown authority") {
		t.Fatalf("init without the CA: %+v", r)
	}
	cl.must("init", tok, "--ca", p.caFile)
	var prof struct {
		BaseURL string `json:"baseUrl"`
		CAFile  string `json:"caFile"`
	}
	if err := json.Unmarshal([]byte(cl.must("profile", "get", "-o", "json")), &prof); err != nil || prof.CAFile != p.caFile || !strings.HasPrefix(prof.BaseURL, "https://") {
		t.Fatalf("the profile: %+v %v", prof, err)
	}
	if out := cl.must("profile", "get"); !strings.Contains(out, "CA file:") {
		t.Errorf("profile get does not show the CA file:\n%s", out)
	}
	cl.must("user", "ls")
	otherCA := p.file(t, "other-ca.crt", tlstest.NewCA(t, "other CA").PEM, 0o600)
	if r := cl.run("--ca", otherCA, "user", "ls"); r.code != exitServer || !strings.Contains(r.stderr, "unknown authority") {
		t.Fatalf("--ca of another CA over the profile's: %+v", r)
	}
	cl.must("user", "ls", "--ca", p.caFile)
}

func missingPath(p *pki) string { return filepath.Join(p.dir, "missing-ca.crt") }

// TestEtcdTLS: a node reaches a real etcd 3.4 cluster that serves its
// clients over TLS and requires their certificates, with --etcd-cacert,
// --etcd-cert and --etcd-key; a client without a certificate is refused
// by that cluster.
func TestEtcdTLS(t *testing.T) {
	integration(t)
	bin := etcdBinary(t)
	p := newPKI(t)
	dir, err := os.MkdirTemp("", "etcd-tls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	addr := freeAddr(t)
	endpoint := "https://" + addr
	etcd := startProcIn(t, dir, "etcd tls", bin,
		"--name", "m0", "--data-dir", filepath.Join(dir, "m0"),
		"--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
		"--listen-peer-urls", "unix://p0:1", "--initial-advertise-peer-urls", "unix://p0:1",
		"--initial-cluster", "m0=unix://p0:1", "--initial-cluster-state", "new",
		"--cert-file", p.serverCrt, "--key-file", p.serverKy, "--trusted-ca-file", p.caFile, "--client-cert-auth",
		"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn")
	clientCert := p.client.TLS(t)
	eventually(t, startTimeout, "etcd serving over TLS", func() (bool, string) {
		if etcd.exited() {
			t.Fatalf("etcd exited: %v", etcd.err)
		}
		r, err := httpDoWith(p.httpsClient(&clientCert), http.MethodGet, endpoint+"/health", "", nil)
		if err != nil {
			return false, err.Error()
		}
		return r.status == http.StatusOK && strings.Contains(string(r.body), `"health":"true"`), r.String()
	})

	// Without a client certificate, the cluster refuses.
	anon, err := storage.DialTLS(&tls.Config{RootCAs: p.ca.Pool()}, endpoint)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err = anon.Get(ctx, "/")
		cancel()
		anon.Close()
	}
	if err == nil {
		t.Fatal("etcd served a client without a certificate")
	}

	root := newRootKey(t)
	wdir := t.TempDir()
	w := startWarden(t, "warden", filepath.Join(wdir, "data"), append(root.bootstrapFlags(t, wdir),
		"--etcd-endpoints", endpoint, "--etcd-cacert", p.caFile, "--etcd-cert", p.clientCrt, "--etcd-key", p.clientKy)...)
	w.waitReady(t, 0)
	acc := w.servingAccount(t)
	w.mustCall(t, http.MethodGet, "/v1/account/"+acc+"/me", root.token(t, w.base), nil, nil)
}

// TestTLSAddresses: with --tls-cert the default base URL is https://;
// `warden health --addr` takes a listen address or an http:// or https://
// URL of one.
func TestTLSAddresses(t *testing.T) {
	t.Parallel()
	f := &serveConfig{Listen: "127.0.0.1:0", TLS: tlsConfig{CertFile: "tls.crt", KeyFile: "tls.key"}}
	f.bound("127.0.0.1:41234")
	if f.BaseURL != "https://127.0.0.1:41234" || f.Engine.Audiences[0] != f.BaseURL {
		t.Errorf("base URL %q, audiences %v", f.BaseURL, f.Engine.Audiences)
	}
	for _, tc := range []struct {
		addr  string
		https bool
		want  string
	}{
		{"127.0.0.1:7801", false, "http://127.0.0.1:7801"},
		{"127.0.0.1:7801", true, "https://127.0.0.1:7801"},
		{"https://:7801", false, "https://127.0.0.1:7801"},
		{"http://0.0.0.0:7801/", true, "http://127.0.0.1:7801"},
		{"ftp://host:1", false, ""},
		{"https://host", false, ""},
	} {
		got, err := probeURL(tc.addr, tc.https)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("probeURL(%q, %v) = %q, %v; want %q", tc.addr, tc.https, got, err, tc.want)
		}
	}
}
