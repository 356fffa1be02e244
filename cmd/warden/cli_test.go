package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/admin/admintest"
	"github.com/wardenauthz/warden/internal/testkit/contract"
	"github.com/wardenauthz/warden/policywasm/wasmtest"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

// cli runs the CLI in-process with a config directory of the test's own.
type cli struct {
	t   *testing.T
	dir string
}

type result struct {
	code           int
	stdout, stderr string
}

func (c cli) run(args ...string) result {
	c.t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, &out, &errOut)
	if strings.Contains(errOut.String(), "goroutine ") || strings.Contains(errOut.String(), "panic:") {
		c.t.Fatalf("warden %v printed a stack trace:\n%s", args, errOut.String())
	}
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func (c cli) must(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != exitOK {
		c.t.Fatalf("warden %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// cliWithRoot is a CLI whose default profile is the root client of an
// in-process deployment, which ends with the test.
func cliWithRoot(t *testing.T) (cli, *admintest.Server) {
	c := newCLI(t)
	d, err := admintest.Start(filepath.Join(c.dir, "deployment"), admintest.Options{Wrap: checked(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	c.must("init", d.RootInitToken)
	return c, d
}

// checked holds a deployment's answers to docs/openapi.yaml: every request
// the CLI makes goes through the contract check.
func checked(t *testing.T) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler { return contract.Wrap(t, h) }
}

func newCLI(t *testing.T) cli {
	dir := t.TempDir()
	t.Setenv("WARDEN_CONFIG_DIR", filepath.Join(dir, "config"))
	t.Setenv("WARDEN_PROFILE", "")
	return cli{t: t, dir: dir}
}

// TestCLI: the commands against an in-process deployment, their output
// formats, and an exit code and a helpful message for each kind of failure.
func TestCLI(t *testing.T) {
	c := newCLI(t)
	d, err := admintest.Start(filepath.Join(c.dir, "deployment"), admintest.Options{Wrap: checked(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res := "/account/" + d.Account + "/"

	// No profile yet.
	if r := c.run("user", "ls"); r.code != exitUsage || !strings.Contains(r.stderr, "there is no profile yet") {
		t.Fatalf("no profile: %+v", r)
	}
	c.must("init", d.RootInitToken)
	if r := c.run("init", d.RootInitToken, "--profile", "again"); r.code != exitNotFound || !strings.Contains(r.stderr, "already been used") {
		t.Fatalf("a spent init token: %+v", r)
	}

	// profile get --include-credentials -o json has API.md's shape, and
	// the key file is private.
	var p struct {
		ID, BaseURL, Account string
		PKI                  map[string]string
	}
	if err := json.Unmarshal([]byte(c.must("profile", "get", "--include-credentials", "-o", "json")), &p); err != nil {
		t.Fatal(err)
	}
	if p.ID != d.RootClient || p.BaseURL != d.URL || p.Account != d.Account || !strings.Contains(p.PKI["privateKey"], "PRIVATE KEY") ||
		p.PKI["algorithm"] != "ES256" || p.PKI["issuer"] == "" || p.PKI["subject"] == "" || p.PKI["kid"] == "" || p.PKI["audience"] != d.URL {
		t.Fatalf("profile: %+v", p)
	}
	if out := c.must("profile", "get", "-o", "json"); strings.Contains(out, "PRIVATE KEY") {
		t.Fatal("the private key was printed without --include-credentials")
	}
	if fi, err := os.Stat(filepath.Join(c.dir, "config", "keys", "default.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	if tok := strings.TrimSpace(c.must("token", "-o", "raw")); strings.Count(tok, ".") != 2 {
		t.Fatalf("token -o raw: %q", tok)
	}

	// Users with identities and access, in tables and JSON.
	var u sdk.Agent
	if err := json.Unmarshal([]byte(c.must("user", "add", "Ada", "Lovelace", "ada@example.com", "-o", "json")), &u); err != nil || u.FirstName != "Ada" {
		t.Fatalf("user add: %+v %v", u, err)
	}
	c.must("user", "identity", "add", u.ID, "--issuer", "https://idp.example", "--subject", "ada")
	c.must("user", "access", "add", u.ID, "function:get")
	out := c.must("user", "access", "ls", u.ID)
	if !strings.Contains(out, "ACTION") || !strings.Contains(out, "function:get  "+res) {
		t.Fatalf("access ls: %q", out)
	}
	if out := c.must("user", "ls", "--name", "love"); !strings.Contains(out, u.ID) || !strings.Contains(out, "Ada Lovelace") {
		t.Fatalf("user ls: %q", out)
	}
	c.must("user", "update", u.ID, "--first-name", "")
	if out := c.must("user", "get", u.ID); strings.Contains(out, "First name") || !strings.Contains(out, "Identity:") {
		t.Fatalf("after clearing the first name: %q", out)
	}
	c.must("user", "access", "rm", u.ID, "--action", "function:get")
	if r := c.run("user", "access", "rm", u.ID, "function:get"); r.code != exitNotFound || !strings.Contains(r.stderr, "has no grant of 'function:get'") {
		t.Fatalf("removing a grant twice: %+v", r)
	}

	// A client that may manage users only, enrolled as a second profile.
	var cl sdk.Agent
	if err := json.Unmarshal([]byte(c.must("client", "add", "ops", "-o", "json")), &cl); err != nil {
		t.Fatal(err)
	}
	c.must("client", "access", "add", cl.ID, "user:*")
	var initTok string
	if err := json.Unmarshal([]byte(c.must("client", "init", cl.ID, "-o", "json")), &initTok); err != nil {
		t.Fatal(err)
	}
	c.must("init", initTok, "--profile", "ops")
	if out := c.must("profile", "ls"); !strings.Contains(out, "*default") || !strings.Contains(out, "ops ") {
		t.Fatalf("profile ls: %q", out)
	}

	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"an unknown profile", []string{"user", "ls", "--profile", "nope"}, exitUsage, `profile "nope" does not exist`},
		{"an unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"an unknown subcommand", []string{"user", "frob"}, exitUsage, `unknown subcommand "frob"`},
		{"a missing argument", []string{"user", "get"}, exitUsage, "1 argument(s) missing"},
		{"a bad output format", []string{"issuer", "ls", "-o", "yaml"}, exitUsage, `-o "yaml" must be one of table, json`},
		{"an invalid action", []string{"user", "access", "add", u.ID, "*:get"}, exitUsage, "has segments after '*'"},
		{"an invalid resource", []string{"user", "access", "add", u.ID, "function:get", "--resource", "account/x"}, exitUsage, "must start with '/'"},
		{"an action with a space", []string{"user", "access", "add", u.ID, "fun ction:get"}, exitUsage, "the action 'fun ction:get' has the segment 'fun ction'"},
		{"an action ending in ':'", []string{"user", "access", "add", u.ID, "function:"}, exitUsage, "the action 'function:' has an empty segment"},
		{"an action with '::'", []string{"user", "access", "add", u.ID, "function::get"}, exitUsage, "the action 'function::get' has an empty segment"},
		{"a resource with '..'", []string{"user", "access", "add", u.ID, "function:get", "--resource", "/account/../"}, exitUsage, "has a '..' segment"},
		{"a resource with a template", []string{"user", "access", "add", u.ID, "function:get", "--resource", "/account/{{accountId}}/"}, exitUsage, "holds '{{'"},
		{"a resource with a space", []string{"user", "access", "add", u.ID, "function:get", "--resource", "/account/a b/"}, exitUsage, "holds white space"},
		{"a malformed id", []string{"user", "get", "usr-1"}, exitUsage, `"userId" with value "usr-1" fails to match`},
		{"a missing user", []string{"user", "get", "usr-0000000000000001"}, exitNotFound, "The user 'usr-0000000000000001' does not exist (HTTP 404)"},
		{"a permission error names what was lacking", []string{"issuer", "ls", "--profile", "ops"}, exitDenied,
			"Unauthorized: profile 'ops' (" + cl.ID + ") may not perform 'issuer:get' on '" + res + "issuer/'"},
		{"a grant beyond the caller's", []string{"user", "access", "add", u.ID, "issuer:get", "--profile", "ops"}, exitUsage,
			"is not authorized to grant access to perform the action 'issuer:get'"},
		{"half an uploaded key", []string{"issuer", "add", "x", "--key-id", "k"}, exitUsage, "--public-key and --key-id go in pairs"},
		{"a denied check", []string{"check", "issuer:add", res + "issuer/x", "--profile", "ops"}, exitDenied, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := c.run(tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
				t.Fatalf("warden %v: exit %d, stderr %q; want exit %d with %q", tc.args, r.code, r.stderr, tc.code, tc.msg)
			}
		})
	}
	if out := c.must("check", "user:add", res+"user"); !strings.HasPrefix(out, "allowed: client "+d.RootClient) {
		t.Fatalf("check: %q", out)
	}

	// What a review found: nothing destroys a key or spends a token for
	// nothing.
	if r := c.run("profile", "rm", ""); r.code != exitUsage {
		t.Fatalf("profile rm '': %+v", r)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "config", "keys", "default.pem")); err != nil {
		t.Fatalf("the default key is gone: %v", err)
	}
	if r := c.run("init", "garbage"); r.code != exitUsage || !strings.Contains(r.stderr, "not a JWT") {
		t.Fatalf("init garbage: %+v", r)
	}
	initTok = strings.Trim(c.must("client", "init", cl.ID, "-o", "json"), "\"\n")
	if r := c.run("init", initTok, "--profile", "OPS"); r.code != exitUsage || !strings.Contains(r.stderr, `profile "ops" exists already`) {
		t.Fatalf("a name clashing by case: %+v", r)
	}
	settings := filepath.Join(c.dir, "config", "settings.json")
	good, _ := os.ReadFile(settings)
	os.WriteFile(settings, []byte("{bad"), 0o600)
	if r := c.run("init", initTok, "--profile", "ops2"); r.code == exitOK {
		t.Fatalf("init with an unreadable store: %+v", r)
	}
	os.WriteFile(settings, good, 0o600)
	c.must("init", initTok, "--profile", "ops2") // the token was not spent
	for _, bad := range [][]string{
		{"check", "function:get", "relative"},
		{"check", "fo o", res},
		{"token", "--lifetime", "0"},
		{"user", "get", ""},
	} {
		if r := c.run(bad...); r.code != exitUsage {
			t.Fatalf("warden %q: %+v", bad, r)
		}
	}
	for _, help := range [][]string{{"user", "identity", "--help"}, {"client", "access", "--help"}, {"user", "--help"}} {
		if r := c.run(help...); r.code != exitOK || !strings.Contains(r.stdout, "Usage:") {
			t.Fatalf("warden %q: %+v", help, r)
		}
	}
	// The access help says that matching is case-sensitive.
	if r := c.run("user", "access", "--help"); !strings.Contains(r.stdout, "case-sensitive: a grant of FUNCTION:GET does not allow function:get") {
		t.Fatalf("access --help: %+v", r)
	}
	if r := c.run("user", "access", "add", "--help"); !strings.Contains(r.stderr+r.stdout, "matched case-sensitively") {
		t.Fatalf("access add --help: %+v", r)
	}

	// An unreachable deployment: the message names the URL tried.
	d.Close()
	r := c.run("user", "ls")
	if r.code != exitServer || !strings.Contains(r.stderr, "cannot reach Warden at "+d.URL) {
		t.Fatalf("unreachable: %+v", r)
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		code int
	}{
		{&sdk.Error{Status: 401}, exitDenied},
		{&sdk.Error{Status: 403}, exitDenied},
		{&sdk.Error{Status: 404}, exitNotFound},
		{&sdk.Error{Status: 400}, exitUsage},
		{&sdk.Error{Status: 503}, exitServer},
		{&sdk.ConnectError{URL: "http://x"}, exitServer},
		{usageError{os.ErrInvalid}, exitUsage},
		{os.ErrPermission, exitError},
	} {
		if got := exitCode(tc.err); got != tc.code {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.code)
		}
	}
}

// TestCLIHooks: warden hook put, get and rm, and the checks they change.
func TestCLIHooks(t *testing.T) {
	c, d := cliWithRoot(t)
	wasm := filepath.Join(c.dir, "tenant.wasm")
	if err := os.WriteFile(wasm, wasmtest.Hook(t, "examples/tenant"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := "/account/" + d.Account + "/subscription/sub-0000000000000001/"
	c.must("check", "function:get", res)

	var h struct{ Name, Mode, ActionPrefix, SHA256 string }
	if err := json.Unmarshal([]byte(c.must("hook", "put", "tenant", wasm, "--action-prefix", "function:", "-o", "json")), &h); err != nil ||
		h.Name != "tenant" || h.Mode != "restrict" || h.ActionPrefix != "function:" || len(h.SHA256) != 64 {
		t.Fatalf("hook put: %+v %v", h, err)
	}
	// The root client's token has no tenant claim.
	if r := c.run("check", "function:get", res); r.code != exitDenied || !strings.Contains(r.stdout+r.stderr, `hook "tenant" denied`) {
		t.Fatalf("check with the hook: %+v", r)
	}
	c.must("check", "user:get", res)
	if out := c.must("hook", "get", "tenant"); !strings.Contains(out, "function:") || !strings.Contains(out, h.SHA256) {
		t.Fatalf("hook get: %q", out)
	}
	c.must("hook", "rm", "tenant")
	c.must("check", "function:get", res)

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"hook", "get", "tenant"}, exitNotFound, "The hook 'tenant' does not exist"},
		{[]string{"hook", "put", "Bad!", wasm}, exitUsage, "the hook name must match"},
		{[]string{"hook", "put", "h", filepath.Join(c.dir, "missing.wasm")}, exitUsage, "reading the module"},
		{[]string{"hook", "put", "h", wasm, "--mode", "veto"}, exitUsage, `--mode "veto" must be restrict or decide`},
		{[]string{"hook", "put", "h", filepath.Join(c.dir, "config", "settings.json")}, exitUsage, "is not a hook Warden can run"},
		{[]string{"hook", "list"}, exitUsage, `unknown subcommand "list"`},
	} {
		if r := c.run(tc.args...); r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("warden %v: %+v; want exit %d with %q", tc.args, r, tc.code, tc.msg)
		}
	}
}

// TestCLIKeyRotation: an uploaded key is rotated with no outage: once the
// new key is added, tokens signed with the old and the new key both pass,
// until the old one is removed. An update that replaces the keys says which
// it dropped.
func TestCLIKeyRotation(t *testing.T) {
	c, d := cliWithRoot(t)
	const iss = "https://idp.rotation.test"
	k1, k2 := ed25519Key(t), ed25519Key(t)
	pem1, pem2 := writePEM(t, c.dir, "k1.pem", k1), writePEM(t, c.dir, "k2.pem", k2)
	c.must("issuer", "add", iss, "--public-key", pem1, "--key-id", "k1")
	var u struct{ ID string }
	if err := json.Unmarshal([]byte(c.must("user", "add", "Ada", "-o", "json")), &u); err != nil {
		t.Fatal(err)
	}
	c.must("user", "identity", "add", u.ID, "--issuer", iss, "--subject", "ada")
	c.must("user", "access", "add", u.ID, "function:get")
	res := "/account/" + d.Account + "/function/f/"
	check := func(key ed25519.PrivateKey, kid string) int {
		t.Helper()
		tok, err := sdk.MintToken(sdk.TokenSpec{PrivateKey: key, KeyID: kid, Issuer: iss, Subject: "ada", Audience: d.URL})
		if err != nil {
			t.Fatal(err)
		}
		cl, err := sdk.NewClient(sdk.Config{BaseURL: d.URL, Account: d.Account, Token: sdk.StaticToken(tok)})
		if err != nil {
			t.Fatal(err)
		}
		dec, err := cl.Check(context.Background(), "function:get", res, 0)
		if err != nil {
			t.Fatal(err)
		}
		return dec.Status
	}
	if s1 := check(k1, "k1"); s1 != 200 {
		t.Fatalf("k1 before the rotation: %d", s1)
	}
	if out := c.must("issuer", "key", "add", iss, "--public-key", pem2, "--key-id", "k2"); !strings.Contains(out, "Key 'k2' added to issuer '"+iss+"': tokens signed with any of its 2 keys pass.") {
		t.Fatalf("key add: %q", out)
	}
	if s1, s2 := check(k1, "k1"), check(k2, "k2"); s1 != 200 || s2 != 200 {
		t.Fatalf("with both keys: k1 %d, k2 %d; want both 200", s1, s2)
	}
	if out := c.must("issuer", "key", "ls", iss); !strings.Contains(out, "k1") || !strings.Contains(out, "k2") || !strings.Contains(out, "Ed25519") {
		t.Fatalf("key ls: %q", out)
	}
	c.must("issuer", "key", "rm", iss, "k1")
	if s1, s2 := check(k1, "k1"), check(k2, "k2"); s1 != 401 || s2 != 200 {
		t.Fatalf("after removing k1: k1 %d, k2 %d; want 401 and 200", s1, s2)
	}
	for _, bad := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"issuer", "key", "rm", iss, "k2"}, exitUsage, "'k2' is the last key of issuer"},
		{[]string{"issuer", "key", "rm", iss, "k9"}, exitNotFound, "has no key 'k9'"},
		{[]string{"issuer", "key", "add", iss, "--public-key", pem2, "--key-id", "k2"}, exitUsage, "has a key 'k2' already"},
		{[]string{"issuer", "key", "add", iss, "--key-id", "k3"}, exitUsage, "--public-key and --key-id are required"},
		{[]string{"issuer", "update", iss, "--public-key", pem1, "--key-id", "k1", "--public-key", pem2}, exitUsage, "got 2 key file(s) and 1 key id(s)"},
	} {
		if r := c.run(bad.args...); r.code != bad.code || !strings.Contains(r.stderr, bad.msg) {
			t.Errorf("warden %q: %+v; want exit %d saying %q", bad.args, r, bad.code, bad.msg)
		}
	}
	// Repeated pairs set several keys at once.
	c.must("issuer", "update", iss, "--public-key", pem1, "--key-id", "k1", "--public-key", pem2, "--key-id", "k2")
	if s1, s2 := check(k1, "k1"), check(k2, "k2"); s1 != 200 || s2 != 200 {
		t.Fatalf("after an update with both keys: k1 %d, k2 %d", s1, s2)
	}
	// An update that drops a key says so.
	if r := c.run("issuer", "update", iss, "--public-key", pem1, "--key-id", "k1"); r.code != exitOK || !strings.Contains(r.stderr, "the key(s) 'k2' were replaced: tokens signed with them now fail") {
		t.Fatalf("update dropping k2: %+v", r)
	}
}

func ed25519Key(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writePEM writes key's public half to dir/name and returns the path.
func writePEM(t *testing.T, dir, name string, key ed25519.PrivateKey) string {
	t.Helper()
	text, err := sdk.PublicKeyPEM(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCLIParity: what fuse users type works: global flags before the
// command, Fusebit's spellings, hook ls, tables that count identities and
// grants, flag errors printed once, and tokens with inline permissions.
func TestCLIParity(t *testing.T) {
	c, d := cliWithRoot(t)
	res := "/account/" + d.Account + "/"
	var u struct{ ID string }
	if err := json.Unmarshal([]byte(c.must("user", "add", "Ada", "Lovelace", "-o", "json")), &u); err != nil {
		t.Fatal(err)
	}
	c.must("user", "identity", "add", u.ID, "--issuer", "https://idp.example", "--subject", "ada")
	c.must("user", "access", "add", u.ID, "function:get")
	c.must("user", "access", "add", u.ID, "function:put")

	// Global flags before the command.
	c.must("init", c.mustInitToken(d), "--profile", "ci")
	for _, args := range [][]string{
		{"--profile", "ci", "user", "ls"},
		{"--profile=ci", "user", "ls"},
		{"-o", "json", "user", "ls"},
		{"-o=json", "--profile", "ci", "user", "ls"},
	} {
		r := c.run(args...)
		if r.code != exitOK || !strings.Contains(r.stdout, u.ID) || strings.Contains(r.stderr, "unknown command") {
			t.Errorf("warden %q: %+v", args, r)
		}
		if slices.Contains(args, "json") && !strings.HasPrefix(strings.TrimSpace(r.stdout), "{") {
			t.Errorf("warden %q printed no JSON: %q", args, r.stdout)
		}
	}
	for _, bad := range [][]string{{"--verbose", "user", "ls"}, {"--profile"}, {"--profile", "ci"}, {"-o", "json", "serve"}} {
		if r := c.run(bad...); r.code != exitUsage || strings.Contains(r.stderr, "Usage: warden <command>") {
			t.Errorf("warden %q: %+v; want exit 2 and one line", bad, r)
		}
	}

	// Fusebit's spelling, and a flag error printed once.
	r := c.run("profile", "get", "--includeCredentials", "-o", "json")
	if r.code != exitOK || !strings.Contains(r.stdout, "PRIVATE KEY") {
		t.Errorf("profile get --includeCredentials: %+v", r)
	}
	r = c.run("profile", "get", "--include-credentialz")
	if r.code != exitUsage || strings.Count(r.stderr, "flag provided but not defined") != 1 || !strings.Contains(r.stderr, "see 'warden profile get --help'") {
		t.Errorf("a mistyped flag: %+v; want its error once, with a hint", r)
	}
	if r := c.run("profile", "get", "--help"); r.code != exitOK || !strings.Contains(r.stdout, "-include-credentials") || r.stderr != "" {
		t.Errorf("profile get --help: %+v; want the flags on stdout", r)
	}

	// Tables count identities and grants; --all shows them.
	out := c.must("user", "ls")
	if !strings.Contains(out, "IDENTITIES") || !strings.Contains(out, "GRANTS") || !regexp.MustCompile(u.ID+`\s+Ada Lovelace\s+1\s+2`).MatchString(out) {
		t.Errorf("user ls: %q", out)
	}
	out = c.must("user", "ls", "--all")
	if !strings.Contains(out, "https://idp.example ada") || !strings.Contains(out, "function:get "+res+"; function:put "+res) {
		t.Errorf("user ls --all: %q", out)
	}
	if out := c.must("client", "ls"); !regexp.MustCompile(`clt-[0-9a-f]{16}\s+root\s+2\s+1`).MatchString(out) {
		t.Errorf("client ls: %q", out)
	}

	// hook ls.
	wasm := filepath.Join(c.dir, "allow.wasm")
	if err := os.WriteFile(wasm, wasmtest.Hook(t, "testdata/guests/allow"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := c.must("hook", "ls"); strings.Count(out, "\n") != 1 {
		t.Errorf("hook ls with no hook: %q", out)
	}
	c.must("hook", "put", "b-second", wasm, "--action-prefix", "function:")
	c.must("hook", "put", "a-first", wasm, "--mode", "decide")
	out = c.must("hook", "ls")
	if !regexp.MustCompile(`(?s)a-first\s+decide\s+\(every action\).*b-second\s+restrict\s+function:`).MatchString(out) {
		t.Errorf("hook ls: %q", out)
	}
	var hooks struct{ Items []model.Hook }
	if err := json.Unmarshal([]byte(c.must("hook", "ls", "-o", "json")), &hooks); err != nil || len(hooks.Items) != 2 || hooks.Items[0].Name != "a-first" {
		t.Errorf("hook ls -o json: %+v %v", hooks, err)
	}
	c.must("hook", "rm", "a-first")
	c.must("hook", "rm", "b-second")

	// warden token --permission mints inline permissions.
	tok := strings.TrimSpace(c.must("token", "--permission", "function:get="+res+"function/f/"))
	cl, err := sdk.NewClient(sdk.Config{BaseURL: d.URL, Account: d.Account, Token: sdk.StaticToken(tok)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		action, resource string
		status           int
	}{
		{"function:get", res + "function/f/x", 200},
		{"function:get", res + "function/g/", 403},
		{"user:get", res + "user/", 403},
	} {
		if dec, err := cl.Check(context.Background(), tc.action, tc.resource, 0); err != nil || dec.Status != tc.status {
			t.Errorf("check %s %s with the narrowed token: %+v %v; want %d", tc.action, tc.resource, dec, err, tc.status)
		}
	}
	for _, bad := range []string{"function:get", "function:get=/a/../b/", "fun ction=/"} {
		if r := c.run("token", "--permission", bad); r.code != exitUsage || !strings.Contains(r.stderr, "--permission") {
			t.Errorf("token --permission %q: %+v", bad, r)
		}
	}
}

// mustInitToken mints an init token for the root client, as root.
func (c cli) mustInitToken(d *admintest.Server) string {
	c.t.Helper()
	var tok string
	if err := json.Unmarshal([]byte(c.must("client", "init", d.RootClient, "-o", "json")), &tok); err != nil {
		c.t.Fatal(err)
	}
	return tok
}
