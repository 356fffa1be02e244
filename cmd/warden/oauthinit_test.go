package main

import (
	"crypto/ed25519"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

// TestCLIOAuthInit: `warden init TOKEN --access-token T` enrolls an oauth
// init token, adding the access token's identity to the agent, and saves
// no profile; what it refuses, it refuses before spending the token.
func TestCLIOAuthInit(t *testing.T) {
	c, d := cliWithRoot(t)
	const iss = "https://idp.oauth.test"
	idpKey := ed25519Key(t)
	c.must("issuer", "add", iss, "--public-key", writePEM(t, c.dir, "idp.pem", idpKey), "--key-id", "k1")
	var u struct{ ID string }
	if err := json.Unmarshal([]byte(c.must("user", "add", "Ada", "-o", "json")), &u); err != nil {
		t.Fatal(err)
	}
	c.must("user", "access", "add", u.ID, "function:get")
	store, err := sdk.DefaultProfileStore()
	if err != nil {
		t.Fatal(err)
	}
	root, _, err := store.Load("")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := root.Client()
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]any{"deviceAuthorizationUrl": iss + "/device", "tokenUrl": iss + "/token"}
	mint := func() string {
		t.Helper()
		tok, _, err := admin.InitUser(t.Context(), u.ID, sdk.InitOptions{OAuth: settings})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	access := func(key ed25519.PrivateKey, subject string) string {
		t.Helper()
		tok, err := sdk.MintToken(sdk.TokenSpec{PrivateKey: key, KeyID: "k1", Issuer: iss, Subject: subject, Audience: d.URL})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// warden user init --oauth mints the same kind of token.
	var cliTok string
	if err := json.Unmarshal([]byte(c.must("user", "init", u.ID, "--oauth", `{"deviceAuthorizationUrl":"`+iss+`/device","tokenUrl":"`+iss+`/token"}`, "-o", "json")), &cliTok); err != nil {
		t.Fatal(err)
	}
	if ic, err := sdk.ParseInitToken(cliTok); err != nil || !ic.OAuth || !reflect.DeepEqual(ic.OAuthSettings, settings) {
		t.Fatalf("user init --oauth: %+v %v", ic, err)
	}
	if out := c.must("user", "init", u.ID, "--oauth", `{"tokenUrl":"x"}`); !strings.Contains(out, "--access-token ACCESS_TOKEN") {
		t.Fatalf("user init --oauth: %q", out)
	}
	if r := c.run("user", "init", u.ID, "--oauth", `[1]`); r.code != exitUsage || !strings.Contains(r.stderr, "must be a JSON object") {
		t.Fatalf("user init --oauth [1]: %+v", r)
	}
	tok := mint()
	if ic, err := sdk.ParseInitToken(tok); err != nil || !ic.OAuth || ic.PKI || ic.IssuerID != "" || ic.Subject != "" ||
		ic.AgentID != u.ID || !reflect.DeepEqual(ic.OAuthSettings, settings) {
		t.Fatalf("parsed %+v %v", ic, err)
	}
	profilesBefore := c.must("profile", "ls", "-o", "json")
	pkiTok, _, err := admin.InitUser(t.Context(), u.ID, sdk.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ada := access(idpKey, "ada")

	// Refusals, none of which spends the token.
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no access token", []string{"init", tok}, exitUsage, "this is an oauth init token: pass an access token of the identity to add to the agent with --access-token TOKEN"},
		{"a profile name", []string{"init", tok, "--access-token", ada, "--profile", "ada"}, exitUsage, "an oauth init token saves no profile"},
		{"an access token that is no JWT", []string{"init", tok, "--access-token", "nope"}, exitUsage, "--access-token: the access token is not a JWT"},
		{"an access token of another key", []string{"init", tok, "--access-token", access(ed25519Key(t), "ada")}, exitDenied, "Unauthorized (HTTP 403)"},
		{"an access token for a pki token", []string{"init", pkiTok, "--access-token", ada}, exitUsage, "--access-token is only for oauth init tokens"},
	} {
		r := c.run(tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%s: %+v; want exit %d with %q", tc.name, r, tc.code, tc.msg)
		}
	}

	// -o json says what was enrolled.
	var res sdk.OAuthEnrollment
	if err := json.Unmarshal([]byte(c.must("init", tok, "--access-token", ada, "-o", "json")), &res); err != nil {
		t.Fatal(err)
	}
	want := model.Identity{IssuerID: iss, Subject: "ada"}
	if res.Identity != want || res.Account != d.Account || res.BaseURL != d.URL || res.Agent.ID != u.ID ||
		len(res.Agent.Identities) != 1 || res.Agent.Identities[0] != want {
		t.Fatalf("enrolled: %+v", res)
	}
	if after := c.must("profile", "ls", "-o", "json"); after != profilesBefore {
		t.Fatalf("profiles changed:\n%s\nwas\n%s", after, profilesBefore)
	}
	// The access token now acts as the user.
	if out := c.must("check", "function:get", "/account/"+d.Account+"/function/f/", "--token", ada); !strings.Contains(out, "allowed: user "+u.ID) {
		t.Fatalf("check with the access token: %q", out)
	}
	if r := c.run("init", tok, "--access-token", access(idpKey, "ada2")); r.code != exitNotFound || !strings.Contains(r.stderr, "already been used") {
		t.Fatalf("a spent init token: %+v", r)
	}

	// The text output says that no profile was saved.
	out := c.must("init", mint(), "--access-token", access(idpKey, "ada3"))
	for _, s := range []string{"Agent " + u.ID + " in account " + d.Account + " on " + d.URL + " now has the identity with issuer '" + iss + "' and subject 'ada3'.",
		"No profile was saved"} {
		if !strings.Contains(out, s) {
			t.Fatalf("init: %q lacks %q", out, s)
		}
	}
}
