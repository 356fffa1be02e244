package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRunExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{name: "no command", args: nil, code: exitUsage, out: "Usage: warden"},
		{name: "unknown command", args: []string{"frobnicate"}, code: exitUsage, out: `unknown command "frobnicate"`},
		{name: "version", args: []string{"version"}, code: exitOK, out: "warden"},
		{name: "serve help", args: []string{"serve", "--help"}, code: exitOK, out: "-listen"},
		{name: "serve bad flag", args: []string{"serve", "--nope"}, code: exitUsage, out: "flag provided but not defined"},
		{name: "serve bad account", args: []string{"serve", "--account", "acc-XYZ"}, code: exitUsage, out: `account "acc-XYZ" does not match ^acc-[a-f0-9]{16}$`},
		{name: "serve stray argument", args: []string{"serve", "extra"}, code: exitUsage, out: `unexpected argument "extra"`},
		{name: "serve bad role", args: []string{"serve", "--role", "boss"}, code: exitUsage, out: `role "boss" must be one of all, admin, sidecar`},
		{name: "serve bad decision log", args: []string{"serve", "--decision-log", "denials"}, code: exitUsage, out: `decision-log "denials" must be one of off, deny, all`},
		{name: "serve bad decision log sample", args: []string{"serve", "--decision-log-sample", "1.5"}, code: exitUsage, out: "decision-log-sample 1.5 must be a share from 0 (exclusive) to 1"},
		{name: "serve bad timing sample", args: []string{"serve", "--check-timing-sample", "-1"}, code: exitUsage, out: "check-timing-sample -1 must be positive"},
		{name: "serve bad token cache size", args: []string{"serve", "--token-cache-size", "-2"}, code: exitUsage, out: "token-cache-size -2 must be a number of tokens, or -1 for no cache"},
		{name: "serve bad total hook memory", args: []string{"serve", "--hook-memory-total-pages", "-1"}, code: exitUsage, out: `"-1" is not a number of pages`},
		{name: "serve bad hook memory cap", args: []string{"serve", "--hook-memory-pages", "70000"}, code: exitUsage, out: "hook-memory-pages 70000 must be at most 65536"},
		{name: "serve every problem at once", args: []string{"serve", "--role", "boss", "--leeway", "-1s", "--batch-timeout", "-1s", "--max-connections", "0"}, code: exitUsage,
			out: "role \"boss\" must be one of all, admin, sidecar\nmax-connections 0 must be at least 1\nleeway -1s must not be negative\nbatch-timeout -1s must not be negative"},
		{name: "serve routes on an admin node", args: []string{"serve", "--role", "admin", "--routes", "r.yaml"}, code: exitUsage, out: "which a node of role admin does not serve"},
		{name: "serve upstream alone", args: []string{"serve", "--upstream", "http://app:8080"}, code: exitUsage, out: "upstream and proxy-listen go together"},
		{name: "serve upstream without routes", args: []string{"serve", "--upstream", "http://app:8080", "--proxy-listen", ":0"}, code: exitUsage, out: "give routes or route-table too"},
		{name: "serve grpc on an admin node", args: []string{"serve", "--role", "admin", "--grpc-listen", ":0"}, code: exitUsage, out: "grpc-listen: Envoy's ext_authz door decides checks"},
		{name: "serve both tables", args: []string{"serve", "--routes", "r.yaml", "--route-table", "app"}, code: exitUsage, out: "a node serves one route table, from a file or from the store"},
		{name: "serve a bad route table name", args: []string{"serve", "--route-table", "App Routes"}, code: exitUsage, out: `route-table "App Routes": the name "App Routes" must match`},
		{name: "serve a bad route table account", args: []string{"serve", "--route-table", "acc-1/app"}, code: exitUsage, out: `route-table "acc-1/app": the account "acc-1" does not match`},
		{name: "serve a bad upstream", args: []string{"serve", "--upstream", "app:8080", "--proxy-listen", ":0", "--routes", "r.yaml"}, code: exitUsage, out: `upstream "app:8080" is not an http:// or https:// URL`},
		{name: "serve bad trusted proxies", args: []string{"serve", "--trusted-proxies", "10.0.0.0/40"}, code: exitUsage, out: `trusted-proxies: trusted proxy "10.0.0.0/40" is not an address or a CIDR`},
		{name: "health help", args: []string{"health", "--help"}, code: exitOK, out: "--live"},
		{name: "health bad timeout", args: []string{"health", "--timeout", "0s"}, code: exitUsage, out: "--timeout 0s must be positive"},
		{name: "serve half a bootstrap", args: []string{"serve", "--bootstrap-public-key", "/nonexistent.pem"}, code: exitUsage, out: "bootstrap-public-key: open /nonexistent.pem"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if code := run(ctx, tc.args, &out, &out); code != tc.code || !strings.Contains(out.String(), tc.out) {
				t.Fatalf("exit %d, output %q; want %d containing %q", code, out.String(), tc.code, tc.out)
			}
		})
	}
}

// TestFlagPrecedence: a flag wins over its environment variable, which
// wins over the default.
func TestFlagPrecedence(t *testing.T) {
	t.Setenv("WARDEN_LISTEN", "env:1")
	t.Setenv("WARDEN_DIAG_LISTEN", "env:2")
	t.Setenv("WARDEN_AUDIENCE", "a, b")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	listen := fs.String("listen", "def:1", "")
	diag := fs.String("diag-listen", "def:2", "")
	other := fs.String("other", "def:3", "")
	var aud listFlag
	fs.Var(&aud, "audience", "")
	if err := parseFlags(fs, []string{"--listen", "flag:1"}); err != nil {
		t.Fatal(err)
	}
	if *listen != "flag:1" || *diag != "env:2" || *other != "def:3" || aud.String() != "a,b" {
		t.Fatalf("listen %q diag %q other %q audience %q", *listen, *diag, *other, aud.String())
	}
	t.Setenv("WARDEN_LEEWAY", "soon")
	fs2 := flag.NewFlagSet("y", flag.ContinueOnError)
	fs2.Duration("leeway", 0, "")
	if err := parseFlags(fs2, nil); err == nil || !strings.Contains(err.Error(), "WARDEN_LEEWAY") {
		t.Fatalf("bad environment value: %v", err)
	}
}

// TestConfigFile: the config file is read through the configuration's
// tags, under the environment and the flags; lists may be YAML lists or
// comma-separated; every bad key and value is reported at once, naming it.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write("ok.yaml", "listen: file:1\ndiag-listen: file:2\naudience: [a, b]\nleeway: 5s\nrole: sidecar\n"+
		"etcd-endpoints: http://e1:2379, http://e2:2379\nhook-memory-total-pages: 2048\ntoken-cache-size: 500\nbatch-timeout: 3s\nbootstrap-issuer: https://idp\n")
	t.Setenv("WARDEN_DIAG_LISTEN", "env:2")
	fs, f := newServeFlags(io.Discard)
	if err := loadConfig(fs, f, []string{"--config", cfg, "--role", "admin"}); err != nil {
		t.Fatal(err)
	}
	if f.Listen != "file:1" || f.DiagListen != "env:2" || strings.Join(f.Engine.Audiences, ",") != "a,b" || f.Engine.Leeway != 5*time.Second || f.Role != "admin" ||
		strings.Join(f.EtcdEndpoints, ",") != "http://e1:2379,http://e2:2379" || f.Hooks.MemoryTotalPages != 2048 || f.Engine.TokenCacheSize != 500 ||
		f.Checks.BatchTimeout != 3*time.Second || f.Bootstrap.Issuer != "https://idp" {
		t.Fatalf("%+v", f)
	}
	// What the file leaves out keeps the flags' defaults.
	if f.HTTP.IdleTimeout != 90*time.Second || f.Checks.MinRevisionWait != time.Second {
		t.Fatalf("defaults lost: %+v", f)
	}
	// WARDEN_CONFIG names the file when --config does not.
	t.Setenv("WARDEN_CONFIG", cfg)
	fs, f = newServeFlags(io.Discard)
	if err := loadConfig(fs, f, nil); err != nil || f.Listen != "file:1" {
		t.Fatalf("WARDEN_CONFIG: %v, listen %q", err, f.Listen)
	}
	t.Setenv("WARDEN_CONFIG", "")
	for name, tc := range map[string]struct{ text, want string }{
		"unknown key":   {"lisen: x\n", `line 1: unknown key "lisen"`},
		"config key":    {"config: other.yaml\n", `unknown key "config"`},
		"bad value":     {"leeway: soon\n", "leeway: line 1: cannot unmarshal"},
		"every problem": {"lisen: x\nleeway: soon\ntoken-cache-size: many\n", `unknown key "lisen"; leeway: line 2: cannot unmarshal !!str ` + "`soon`" + ` into time.Duration; token-cache-size: line 3`},
		"not YAML":      {"listen: [\n", "--config"},
		"not a mapping": {"- a\n", "not a mapping"},
	} {
		fs, f := newServeFlags(io.Discard)
		err := loadConfig(fs, f, []string{"--config", write(name+".yaml", tc.text)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v; want it to contain %q", name, err, tc.want)
		}
	}
	fs, f = newServeFlags(io.Discard)
	if err := loadConfig(fs, f, []string{"--config=" + filepath.Join(dir, "missing.yaml")}); err == nil {
		t.Fatal("a missing config file was accepted")
	}
}

// TestConfigKeysAreFlags: every key of the configuration file is a flag
// of warden serve, and every flag but --config a key.
func TestConfigKeysAreFlags(t *testing.T) {
	fs, _ := newServeFlags(io.Discard)
	keys := yamlFields(reflect.TypeOf(serveConfig{}))
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := keys[f.Name]; !ok && f.Name != "config" {
			t.Errorf("--%s has no key in the configuration file", f.Name)
		}
	})
	for k := range keys {
		if fs.Lookup(k) == nil {
			t.Errorf("the configuration key %q is no flag", k)
		}
	}
}

// TestBaseURLDefault: the default base URL is --listen as given, so a
// restart keeps the audience tokens were minted for; only a port 0 takes
// the port the system chose.
func TestBaseURLDefault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ listen, bound, base string }{
		{"127.0.0.1:7800", "127.0.0.1:7800", "http://127.0.0.1:7800"},
		{"localhost:7800", "127.0.0.1:7800", "http://localhost:7800"},
		{"0.0.0.0:7800", "[::]:7800", "http://0.0.0.0:7800"},
		{"127.0.0.1:0", "127.0.0.1:41234", "http://127.0.0.1:41234"},
		{"localhost:0", "127.0.0.1:41234", "http://localhost:41234"},
		{":0", "[::]:41234", "http://[::]:41234"},
	} {
		f := &serveConfig{Listen: tc.listen}
		f.bound(tc.bound)
		if f.BaseURL != tc.base || len(f.Engine.Audiences) != 1 || f.Engine.Audiences[0] != tc.base {
			t.Errorf("--listen %s bound at %s: base URL %q, audiences %v; want %q", tc.listen, tc.bound, f.BaseURL, f.Engine.Audiences, tc.base)
		}
	}
	f := &serveConfig{Listen: "127.0.0.1:0", BaseURL: "https://warden.example"}
	f.bound("127.0.0.1:41234")
	if f.BaseURL != "https://warden.example" {
		t.Errorf("--base-url was replaced: %q", f.BaseURL)
	}
}
