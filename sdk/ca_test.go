package sdk_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/internal/tlsfiles/tlstest"
	"github.com/wardenauthz/warden/sdk"
)

// tlsDeployment serves the shared deployment over TLS, with a certificate
// of a CA of the test's own, whose PEM file it returns.
func tlsDeployment(t *testing.T) (baseURL, caFile string, ca *tlstest.CA) {
	t.Helper()
	ca = tlstest.NewCA(t, "sdk test CA")
	pair := ca.Issue(t, "deployment", x509.ExtKeyUsageServerAuth)
	target, err := url.Parse(deployment.URL)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair.TLS(t)}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	tlstest.WriteFile(t, caFile, ca.PEM)
	return srv.URL, caFile, ca
}

// TestRootCAs: a client trusts a deployment whose certificate a private
// CA signed when given that CA, and refuses it otherwise.
func TestRootCAs(t *testing.T) {
	base, caFile, _ := tlsDeployment(t)
	roots, err := sdk.LoadCAFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sdk.NewClient(sdk.Config{BaseURL: base, Account: root.Account, Token: root.TokenSource(0), RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	if me, err := c.Me(t.Context()); err != nil || me.ID != root.ID {
		t.Fatalf("Me over TLS: %+v, %v", me, err)
	}

	c, err = sdk.NewClient(sdk.Config{BaseURL: base, Account: root.Account, Token: root.TokenSource(0), Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Me(t.Context())
	var ce *sdk.ConnectError
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &ce) || !errors.As(err, &unknown) {
		t.Fatalf("without the CA: %v; want a ConnectError for an unknown authority", err)
	}
	other, err := sdk.LoadCAFile(writeCA(t, tlstest.NewCA(t, "other CA")))
	if err != nil {
		t.Fatal(err)
	}
	c, _ = sdk.NewClient(sdk.Config{BaseURL: base, Token: root.TokenSource(0), RootCAs: other, Retries: -1})
	if _, err := c.Me(t.Context()); !errors.As(err, &unknown) {
		t.Fatalf("with another CA: %v; want an unknown authority", err)
	}

	if _, err := sdk.NewClient(sdk.Config{BaseURL: base, RootCAs: roots, HTTPClient: http.DefaultClient}); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("RootCAs and HTTPClient both given: %v", err)
	}
}

// TestProfileCAFile: a profile keeps its CA file through the store, and
// its client trusts that CA; a CA file that cannot be read is an error
// that names it.
func TestProfileCAFile(t *testing.T) {
	base, caFile, _ := tlsDeployment(t)
	store := &sdk.ProfileStore{Dir: filepath.Join(t.TempDir(), "config")}
	p := *root
	p.BaseURL, p.CAFile = base, caFile
	if err := store.Save("tls", &p); err != nil {
		t.Fatal(err)
	}
	loaded, _, err := store.Load("tls")
	if err != nil {
		t.Fatal(err)
	}
	if loaded.CAFile != caFile {
		t.Fatalf("the loaded profile's caFile is %q; want %q", loaded.CAFile, caFile)
	}
	settings, err := os.ReadFile(filepath.Join(store.Dir, "settings.json"))
	if err != nil || !strings.Contains(string(settings), `"caFile": "`+caFile+`"`) {
		t.Fatalf("settings.json: %s %v", settings, err)
	}
	c, err := loaded.Client()
	if err != nil {
		t.Fatal(err)
	}
	if me, err := c.Me(t.Context()); err != nil || me.ID != root.ID {
		t.Fatalf("Me with the profile's CA: %+v, %v", me, err)
	}

	loaded.CAFile = filepath.Join(t.TempDir(), "gone.pem")
	if _, err := loaded.Client(); err == nil || !strings.Contains(err.Error(), loaded.CAFile) {
		t.Fatalf("a missing CA file: %v", err)
	}
}

// TestLoadCAFile: a file without a certificate is refused, naming it.
func TestLoadCAFile(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	tlstest.WriteFile(t, key, tlstest.NewCA(t, "ca").Issue(t, "x").KeyPEM)
	empty := filepath.Join(dir, "empty.pem")
	tlstest.WriteFile(t, empty, nil)
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.pem"), "no such file"},
		{empty, "no PEM certificate"},
		{key, `is a "PRIVATE KEY", not a CERTIFICATE`},
	} {
		_, err := sdk.LoadCAFile(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadCAFile(%s): %v; want an error naming the file, with %q", tc.path, err, tc.want)
		}
	}
}

func writeCA(t *testing.T, ca *tlstest.CA) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	tlstest.WriteFile(t, path, ca.PEM)
	return path
}
