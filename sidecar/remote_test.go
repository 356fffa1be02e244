package sidecar

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/wardenauthz/warden/internal/testkit"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/internal/keys"
	"github.com/wardenauthz/warden/sidecar/state"
)

// keyServer serves an issuer's keys as a JWKS or a kid-to-PEM map and
// counts fetches. It can be switched down.
type keyServer struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	keys    map[string]crypto.Signer
	kidMap  bool
	down    atomic.Bool
	fetches atomic.Int64
}

func newKeyServer(t testing.TB, kidMap bool, names ...string) *keyServer {
	ks := &keyServer{t: t, keys: map[string]crypto.Signer{}, kidMap: kidMap}
	for _, n := range names {
		ks.keys[n] = testkit.Key(t, n)
	}
	ks.srv = httptest.NewServer(http.HandlerFunc(ks.serve))
	t.Cleanup(ks.srv.Close)
	return ks
}

func (ks *keyServer) add(name string) {
	ks.mu.Lock()
	ks.keys[name] = testkit.Key(ks.t, name)
	ks.mu.Unlock()
}

func (ks *keyServer) serve(w http.ResponseWriter, r *http.Request) {
	ks.fetches.Add(1)
	if ks.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	w.Header().Set("Cache-Control", "public, max-age=300")
	if ks.kidMap {
		m := map[string]string{}
		for kid, k := range ks.keys {
			der, _ := x509.MarshalPKIXPublicKey(k.Public())
			m[kid] = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		}
		_ = json.NewEncoder(w).Encode(m)
		return
	}
	var set []jwk.Key
	for kid, k := range ks.keys {
		jk, err := jwk.FromRaw(k.Public())
		if err != nil {
			ks.t.Error(err)
			return
		}
		_ = jk.Set(jwk.KeyIDKey, kid)
		set = append(set, jk)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": set})
}

// remoteFixture is the fixture with its issuer's keys at ks's URL.
func remoteFixture(t *testing.T, ks *keyServer) *fixture {
	f := newFixture(t, Config{AllowInsecureKeyURLs: true})
	f.apply(func(b *state.Batch) {
		b.PutIssuer(testkit.Acc, model.Issuer{ID: testkit.Issuer, JSONKeysURL: ks.srv.URL + "/keys?secret=s3cr3t"})
	})
	return f
}

func TestJWKSKeys(t *testing.T) {
	t.Parallel()
	for _, kidMap := range []bool{false, true} {
		t.Run(fmt.Sprintf("kidMap=%v", kidMap), func(t *testing.T) {
			t.Parallel()
			ks := newKeyServer(t, kidMap, "rsa1", "ec256", "ed")
			f := remoteFixture(t, ks)
			if ks.fetches.Load() != 0 {
				t.Fatal("adding an issuer fetched its keys")
			}
			for _, name := range []string{"rsa1", "ec256", "ed"} {
				if d := f.check(f.tok(name, testkit.AliceSub), "function:get", testkit.AliceRes); !d.Allow {
					t.Fatalf("%s: %+v", name, d)
				}
			}
			if n := ks.fetches.Load(); n != 1 {
				t.Fatalf("%d fetches for three known kids, want 1", n)
			}
		})
	}
}

// TestJWKSRotation: a new kid published by the issuer is picked up by the
// unknown-kid refetch, without waiting for the refresh schedule.
func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	ks := newKeyServer(t, false, "rsa1")
	f := remoteFixture(t, ks)
	old := f.tok("rsa1", testkit.AliceSub)
	if d := f.check(old, "function:get", testkit.AliceRes); !d.Allow {
		t.Fatalf("before rotation: %+v", d)
	}
	ks.add("ec256")
	if d := f.check(f.tok("ec256", testkit.AliceSub), "function:get", testkit.AliceRes); !d.Allow {
		t.Fatalf("new kid after rotation: %+v", d)
	}
	if d := f.check(old, "function:get", testkit.AliceRes); !d.Allow {
		t.Fatalf("old kid after rotation: %+v", d)
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (initial + one for the new kid)", n)
	}
}

// TestIssuerDown: once fetched, keys keep verifying new tokens while the
// issuer is down, until the staleness bound.
func TestIssuerDown(t *testing.T) {
	t.Parallel()
	ks := newKeyServer(t, false, "rsa1", "ec256")
	f := newFixture(t, Config{AllowInsecureKeyURLs: true, MaxKeyStaleness: 2 * time.Hour})
	f.apply(func(b *state.Batch) {
		b.PutIssuer(testkit.Acc, model.Issuer{ID: testkit.Issuer, JSONKeysURL: ks.srv.URL})
	})
	if d := f.check(f.tok("rsa1", testkit.AliceSub), "function:get", testkit.AliceRes); !d.Allow {
		t.Fatalf("up: %+v", d)
	}
	ks.down.Store(true)
	f.clock.Add(10 * time.Minute) // past max-age: the refresh is due and fails
	f.eng.keys.RefreshDue(t.Context())
	waitFor(t, func() bool { return f.eng.keys.Fetches()[keys.FetchKey{Trigger: "scheduled", Result: "failure"}] == 1 })
	if d := f.check(f.tok("ec256", testkit.AliceSub), "function:get", testkit.AliceRes); !d.Allow {
		t.Fatalf("down, fresh token with a known kid: %+v", d)
	}
	// Stale on error, visible in the metrics: the keys are 10 minutes old
	// and their refresh is failing.
	want := fmt.Sprintf(`
# HELP warden_key_age_seconds Time since an issuer's keys were last fetched successfully, for issuers publishing keys at a URL.
# TYPE warden_key_age_seconds gauge
warden_key_age_seconds{account=%[1]q,issuer=%[2]q} 600
# HELP warden_key_fetches_total Fetches of issuers' key URLs, by trigger (initial, scheduled, unknown_kid) and result (success, failure).
# TYPE warden_key_fetches_total counter
warden_key_fetches_total{result="failure",trigger="initial"} 0
warden_key_fetches_total{result="failure",trigger="scheduled"} 1
warden_key_fetches_total{result="failure",trigger="unknown_kid"} 0
warden_key_fetches_total{result="success",trigger="initial"} 1
warden_key_fetches_total{result="success",trigger="scheduled"} 0
warden_key_fetches_total{result="success",trigger="unknown_kid"} 0
# HELP warden_key_refresh_failing 1 while an issuer's last key fetch failed (its previous keys, if any, are kept until --max-key-staleness), else 0; an issuer whose keys never loaded is 1.
# TYPE warden_key_refresh_failing gauge
warden_key_refresh_failing{account=%[1]q,issuer=%[2]q} 1
`, testkit.Acc, testkit.Issuer)
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want), "warden_key_age_seconds", "warden_key_fetches_total", "warden_key_refresh_failing"); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(2 * time.Hour)
	d := f.check(f.tok("ec256", testkit.AliceSub), "function:get", testkit.AliceRes)
	if d.Status != 401 || !strings.Contains(d.Reason, "stale") {
		t.Fatalf("down past the staleness bound: %+v", d)
	}
	if strings.Contains(d.Reason, "secret") {
		t.Fatalf("reason leaks the URL's query: %q", d.Reason)
	}
}

// TestForgedKidFlood: tokens with random kids cost at most one refetch per
// rate-limit window, however many arrive.
func TestForgedKidFlood(t *testing.T) {
	t.Parallel()
	ks := newKeyServer(t, false, "rsa1")
	f := remoteFixture(t, ks)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				tok := testkit.WithHeader(t, f.tok("rsa1", testkit.AliceSub), fmt.Sprintf(`{"alg":"RS256","kid":"forged-%d-%d"}`, g, i))
				if d := f.check(tok, "function:get", testkit.AliceRes); d.Status != 401 {
					t.Errorf("forged kid: %+v", d)
				}
			}
		}()
	}
	wg.Wait()
	if n := ks.fetches.Load(); n > 2 {
		t.Fatalf("%d fetches for 400 forged kids, want at most 2", n)
	}
	// After the window, one more refetch is allowed.
	f.clock.Add(31 * time.Second)
	f.check(testkit.WithHeader(t, f.tok("rsa1", testkit.AliceSub), `{"alg":"RS256","kid":"late"}`), "function:get", testkit.AliceRes)
	if n := ks.fetches.Load(); n > 3 {
		t.Fatalf("%d fetches after the window, want at most 3", n)
	}
	// The real key still works throughout.
	if d := f.check(f.tok("rsa1", testkit.AliceSub), "function:get", testkit.AliceRes); !d.Allow {
		t.Fatalf("real kid during flood: %+v", d)
	}
}

// TestRemoteKeyChangeDropsCachedTokens: when a fetched key set changes, the
// tokens it vouched for are verified again.
func TestRemoteKeyChangeDropsCachedTokens(t *testing.T) {
	t.Parallel()
	ks := newKeyServer(t, false, "rsa1")
	f := remoteFixture(t, ks)
	tok := f.tok("rsa1", testkit.AliceSub)
	if d := f.check(tok, "function:get", testkit.AliceRes); !d.Allow {
		t.Fatalf("before: %+v", d)
	}
	ks.mu.Lock()
	ks.keys["rsa1"] = testkit.Key(t, "rsa2") // same kid, other key
	ks.mu.Unlock()
	f.clock.Add(6 * time.Minute)
	f.eng.keys.RefreshDue(t.Context())
	waitFor(t, func() bool { return ks.fetches.Load() >= 2 })
	waitFor(t, func() bool {
		return f.check(tok, "function:get", testkit.AliceRes).Reason == "invalid signature"
	})
}

func TestInsecureKeyURLRefused(t *testing.T) {
	t.Parallel()
	ks := newKeyServer(t, false, "rsa1")
	f := newFixture(t, Config{})
	f.apply(func(b *state.Batch) {
		b.PutIssuer(testkit.Acc, model.Issuer{ID: testkit.Issuer, JSONKeysURL: ks.srv.URL})
	})
	d := f.check(f.tok("rsa1", testkit.AliceSub), "function:get", testkit.AliceRes)
	if d.Status != 401 || !strings.Contains(d.Reason, "not https") || ks.fetches.Load() != 0 {
		t.Fatalf("http key URL: %+v, %d fetches", d, ks.fetches.Load())
	}
}

// waitFor polls cond until it holds, failing after a generous deadline. It
// waits for background work; it asserts nothing about speed.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKeyFetchFailureReasons: when an issuer's keys cannot be fetched, the
// check's reason names the issuer and says only that: not the kind of
// failure, nor a host, an address or a resolver, which would tell anyone
// without a token what the node can reach. The details go to the log, the
// kind to warden_key_fetch_failures_total, and the issuer, whose keys never
// loaded, has a failing series and no age.
func TestKeyFetchFailureReasons(t *testing.T) {
	t.Parallel()
	dnsFail := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: "keys.internal", Server: "10.255.255.53:53", IsNotFound: true}}
	}
	refused := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: &net.TCPAddr{IP: net.IPv4(10, 9, 8, 7), Port: 8443}, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>nope</html>")) }))
	t.Cleanup(garbage.Close)
	down := newKeyServer(t, false, "rsa1")
	down.down.Store(true)
	tests := []struct {
		name   string
		url    string
		client *http.Client
		kind   string
		detail string // in the log, not in the reason
	}{
		{"the host does not resolve", "http://keys.internal/jwks", &http.Client{Transport: &http.Transport{DialContext: dnsFail}}, keys.FailDNS, "10.255.255.53:53"},
		{"the connection is refused", "http://keys.internal/jwks", &http.Client{Transport: &http.Transport{DialContext: refused}}, keys.FailRefused, "10.9.8.7:8443"},
		{"the server is down", down.srv.URL + "/keys", nil, keys.FailStatus, down.srv.Listener.Addr().String()},
		{"the server answers garbage", garbage.URL + "/keys", nil, keys.FailDocument, garbage.Listener.Addr().String()},
		{"the server is slow", slow.URL + "/keys", &http.Client{Timeout: 50 * time.Millisecond}, keys.FailTimeout, slow.Listener.Addr().String()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var log bytes.Buffer
			var mu sync.Mutex
			f := newFixtureWith(t, Config{AllowInsecureKeyURLs: true}, Deps{HTTPClient: tc.client,
				Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &log}, nil))})
			f.apply(func(b *state.Batch) {
				b.PutIssuer(testkit.Acc, model.Issuer{ID: testkit.Issuer, JSONKeysURL: tc.url})
			})
			d := f.check(f.tok("rsa1", testkit.AliceSub), "function:get", testkit.AliceRes)
			want := fmt.Sprintf("the keys of issuer %q could not be fetched", testkit.Issuer)
			if d.Status != 401 || d.Reason != want {
				t.Fatalf("decision %+v; want 401 %q", d, want)
			}
			if n := f.eng.keys.Failures()[tc.kind]; n != 1 {
				t.Errorf("failures of kind %s: %d, want 1 (%v)", tc.kind, n, f.eng.keys.Failures())
			}
			mu.Lock()
			logged := log.String()
			mu.Unlock()
			if !strings.Contains(logged, tc.detail) {
				t.Errorf("the log lacks the detail %q:\n%s", tc.detail, logged)
			}
			want = fmt.Sprintf(`
# HELP warden_key_refresh_failing 1 while an issuer's last key fetch failed (its previous keys, if any, are kept until --max-key-staleness), else 0; an issuer whose keys never loaded is 1.
# TYPE warden_key_refresh_failing gauge
warden_key_refresh_failing{account=%q,issuer=%q} 1
`, testkit.Acc, testkit.Issuer)
			if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want), "warden_key_age_seconds", "warden_key_refresh_failing"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestKeyURLRedirects: an https key URL that redirects to http is refused
// (else anyone on the path could serve the keys), and so is a chain of
// more than three redirects; a redirect that stays on https is followed.
func TestKeyURLRedirects(t *testing.T) {
	t.Parallel()
	plain := newKeyServer(t, false, "rsa1")
	var tlsSrv *httptest.Server
	tlsSrv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-http":
			http.Redirect(w, r, plain.srv.URL+"/keys", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/to-https":
			http.Redirect(w, r, "/keys", http.StatusMovedPermanently)
		case "/keys":
			plain.serve(w, r)
		}
	}))
	t.Cleanup(tlsSrv.Close)
	tests := []struct {
		path   string
		status int
		reason string
	}{
		{"/to-http", 401, "could not be fetched"},
		{"/loop", 401, "could not be fetched"},
		{"/to-https", 200, "allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			f := newFixtureWith(t, Config{}, Deps{HTTPClient: tlsSrv.Client()})
			f.apply(func(b *state.Batch) {
				b.PutIssuer(testkit.Acc, model.Issuer{ID: testkit.Issuer, JSONKeysURL: tlsSrv.URL + tc.path})
			})
			d := f.check(f.tok("rsa1", testkit.AliceSub), "function:get", testkit.AliceRes)
			if d.Status != tc.status || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("%+v; want %d %q", d, tc.status, tc.reason)
			}
			if n := f.eng.keys.Failures()[keys.FailRedirect]; (n == 1) != (tc.status == 401) {
				t.Errorf("redirect failures: %d", n)
			}
		})
	}
}
