package admin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wardenauthz/warden/internal/testkit/contract"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sidecar/storage"
)

func bootstrapLayout(t *testing.T) storage.Layout {
	return storage.NewLayout(fmt.Sprintf("/test/%s/%d/", t.Name(), prefixes.Add(1)))
}

func TestBootstrapWritesRootInitToken(t *testing.T) {
	layout := bootstrapLayout(t)
	dir := t.TempDir()
	cfg := Config{BaseURL: "http://warden.test"}
	deps := Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	res, err := Bootstrap(t.Context(), etcdClient, layout, cfg, deps, BootstrapOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.TokenFile != filepath.Join(dir, RootInitTokenFile) {
		t.Fatalf("first start: %+v", res)
	}
	fi, err := os.Stat(res.TokenFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	raw, _ := os.ReadFile(res.TokenFile)
	tok := strings.TrimSuffix(string(raw), "\n")
	if len(raw) != len(tok)+1 || strings.Count(tok, ".") != 2 {
		t.Fatalf("token file holds %q", raw)
	}
	c := initClaims(t, tok)
	profile, _ := c["profile"].(map[string]any)
	if c["agentId"] != res.RootClient || c["protocol"] != "pki" || profile["account"] != res.Account || profile["baseUrl"] != cfg.BaseURL || c["iss"] != cfg.BaseURL {
		t.Fatalf("claims %v", c)
	}
	// A later start changes nothing, and an --account that differs is
	// refused.
	again, err := Bootstrap(t.Context(), etcdClient, layout, cfg, deps, BootstrapOptions{DataDir: dir, Account: res.Account})
	if err != nil || again.Created || again.TokenFile != "" || again.Account != res.Account || again.RootClient != res.RootClient {
		t.Fatalf("second start: %+v %v", again, err)
	}
	if raw2, _ := os.ReadFile(res.TokenFile); string(raw2) != string(raw) {
		t.Fatal("a second start rewrote the token file")
	}
	if _, err := Bootstrap(t.Context(), etcdClient, layout, cfg, deps, BootstrapOptions{DataDir: dir, Account: "acc-0000000000000001"}); err == nil ||
		!strings.Contains(err.Error(), "differs from the account "+res.Account) {
		t.Fatalf("another account: %v", err)
	}
}

// TestBootstrapRace: of several nodes starting at once on an empty store,
// exactly one bootstraps, all agree on the account, and exactly one token
// file remains.
func TestBootstrapRace(t *testing.T) {
	layout := bootstrapLayout(t)
	cfg := Config{BaseURL: "http://warden.test"}
	const n = 4
	dirs := make([]string, n)
	results := make([]BootstrapResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		dirs[i] = t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = Bootstrap(context.Background(), etcdClient, layout, cfg, Deps{}, BootstrapOptions{DataDir: dirs[i]})
		}()
	}
	wg.Wait()
	created, files := 0, 0
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if results[i].Account != results[0].Account || results[i].RootClient != results[0].RootClient {
			t.Fatalf("nodes disagree: %+v", results)
		}
		if results[i].Created {
			created++
		}
		if _, err := os.Stat(filepath.Join(dirs[i], RootInitTokenFile)); err == nil {
			files++
		}
	}
	if created != 1 || files != 1 {
		t.Fatalf("%d created, %d token files", created, files)
	}
}

// TestBootstrapIssuer: the bootstrap issuer and the root identity are
// registered on every start, idempotently, and the root client's token
// works against the admin API.
func TestBootstrapIssuer(t *testing.T) {
	layout := bootstrapLayout(t)
	cfg := Config{BaseURL: "http://warden.test"}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pemText, _ := sdk.PublicKeyPEM(key.Public())
	opts := BootstrapOptions{DataDir: t.TempDir(), Issuer: "https://ci.test", Subject: "deployer", PublicKeyPEM: pemText}
	res, err := Bootstrap(t.Context(), etcdClient, layout, cfg, Deps{}, opts)
	if err != nil || res.TokenFile != "" {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(opts.DataDir, RootInitTokenFile)); err == nil {
		t.Fatal("a token file was written although a bootstrap issuer was given")
	}
	dump := func() string {
		r, err := etcdClient.Get(t.Context(), layout.Prefix, withPrefix())
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, kv := range r.Kvs {
			fmt.Fprintf(&b, "%s=%s@%d\n", kv.Key, kv.Value, kv.ModRevision)
		}
		return b.String()
	}
	before := dump()
	if !strings.Contains(before, `"identities":[{"issuerId":"https://ci.test","subject":"deployer"}]`) {
		t.Fatalf("root identity missing:\n%s", before)
	}
	kid, _ := thumbprint(key.Public())
	if !strings.Contains(before, `"keyId":"`+kid+`"`) {
		t.Fatalf("the key id is not the thumbprint %s:\n%s", kid, before)
	}
	if _, err := Bootstrap(t.Context(), etcdClient, layout, cfg, Deps{}, opts); err != nil {
		t.Fatal(err)
	}
	if after := dump(); after != before {
		t.Fatalf("a second start wrote again:\n%s\n%s", before, after)
	}
	bad := []BootstrapOptions{
		{Issuer: "https://ci.test"},
		{Issuer: "https://ci.test", Subject: "s", PublicKeyPEM: "nope"},
		{Account: "acc-1"},
	}
	for _, o := range bad {
		if _, err := Bootstrap(t.Context(), etcdClient, layout, cfg, Deps{}, o); err == nil {
			t.Fatalf("accepted %+v", o)
		}
	}
}

func TestRegisterRefusal(t *testing.T) {
	mux := http.NewServeMux()
	RegisterRefusal(mux)
	srv := httptest.NewServer(contract.Wrap(t, mux))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/account/"+testAcc+"/user", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 404 || !strings.Contains(string(b), "serves checks only") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}
