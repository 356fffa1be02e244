package admin

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar/storage"
)

// oauthSettings is an oauth object as Fusebit's CLI sends it, with numbers
// that a float64 round trip would change.
const oauthSettings = `{"deviceAuthorizationUrl":"https://idp.test/device","deviceClientId":"cli","tokenUrl":"https://idp.test/token",` +
	`"scopes":["openid","email"],"ratio":1.50,"big":12345678901234567890,"nested":{"empty":null,"list":[]}}`

// exactClaims decodes an init token's claims without verifying them,
// keeping numbers as written.
func exactClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return decodeExact(t, payload)
}

func decodeExact(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return m
}

// initRecord reads the stored record of an init token.
func (e *env) initRecord(tok string) storage.InitRecord {
	e.t.Helper()
	jti, _ := initClaims(e.t, tok)["jti"].(string)
	key := e.layout.Init(testAcc, jti)
	resp, err := etcdClient.Get(e.t.Context(), key)
	if err != nil || len(resp.Kvs) != 1 {
		e.t.Fatalf("reading %s: %v", key, err)
	}
	var rec storage.InitRecord
	if err := storage.Decode(key, resp.Kvs[0].Value, &rec); err != nil {
		e.t.Fatal(err)
	}
	return rec
}

// accessToken mints a token of issuer for subject, signed by key under kid,
// at the test clock.
func (e *env) accessToken(key *ecdsa.PrivateKey, kid, issuer, subject, audience string, now time.Time) string {
	e.t.Helper()
	tok, err := sdk.MintToken(sdk.TokenSpec{PrivateKey: key, KeyID: kid, Issuer: issuer, Subject: subject, Audience: audience, Now: now})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// TestOAuthInitMint: an oauth init token echoes the profile, oauth object
// included and unchanged, adds baseUrl and account, and names no issuer or
// subject.
func TestOAuthInitMint(t *testing.T) {
	e := newEnv(t)
	usr, _ := e.agent("user", "u1")
	body := `{"protocol":"oauth","profile":{"id":"work","subscription":"sub-0000000000000001","oauth":` + oauthSettings + `}}`
	tok := e.mint("user", usr, body)
	c := exactClaims(t, tok)
	profile, _ := c["profile"].(map[string]any)
	want := decodeExact(t, []byte(oauthSettings))
	if !reflect.DeepEqual(profile["oauth"], want) {
		t.Fatalf("profile.oauth %v, want %v", profile["oauth"], want)
	}
	wantKeys := []string{"account", "baseUrl", "id", "oauth", "subscription"}
	if got := slices.Sorted(maps.Keys(profile)); !reflect.DeepEqual(got, wantKeys) {
		t.Fatalf("profile fields %v, want %v", got, wantKeys)
	}
	if c["protocol"] != "oauth" || c["agentId"] != usr || c["iss"] != e.srv.URL || c["aud"] != e.srv.URL ||
		profile["baseUrl"] != e.srv.URL || profile["account"] != testAcc || profile["id"] != "work" {
		t.Fatalf("claims: %v", c)
	}
	for _, k := range []string{"issuerId", "subject", "accountId"} {
		if _, ok := c[k]; ok {
			t.Fatalf("the claims carry %s: %v", k, c)
		}
	}
	exp, _ := c["exp"].(json.Number).Int64()
	iat, _ := c["iat"].(json.Number).Int64()
	if exp-iat != 8*3600 || len(c["jti"].(string)) != 32 {
		t.Fatalf("exp %d iat %d jti %v", exp, iat, c["jti"])
	}
	rec := e.initRecord(tok)
	if rec.Protocol != "oauth" || rec.IssuerID != "" || rec.Subject != "" || rec.AgentID != usr || rec.Consumed {
		t.Fatalf("record: %+v", rec)
	}
	// A pki token records its protocol and minted identity.
	if rec := e.initRecord(e.mint("user", usr, `{"protocol":"pki","profile":{}}`)); rec.Protocol != "pki" || rec.IssuerID == "" || rec.Subject == "" {
		t.Fatalf("pki record: %+v", rec)
	}
}

// TestOAuthInitMintRefusals: the validation of the mint body, with the
// exact messages, and nothing stored on refusal.
func TestOAuthInitMintRefusals(t *testing.T) {
	e := newEnv(t)
	usr, _ := e.agent("user", "u1")
	path := "/v1/account/" + testAcc + "/user/" + usr + "/init"
	tests := []struct{ name, body, msg string }{
		{"an unknown protocol", `{"protocol":"saml"}`, `"protocol" must be one of [pki, oauth]`},
		{"an unknown protocol with a profile", `{"protocol":"ldap","profile":{"oauth":{}}}`, `"protocol" must be one of [pki, oauth]`},
		{"a protocol of another case", `{"protocol":"OAuth","profile":{"oauth":{}}}`, `"protocol" must be one of [pki, oauth]`},
		{"a protocol that is no string", `{"protocol":5}`, `"protocol" must be one of [pki, oauth]`},
		{"pki without a profile", `{"protocol":"pki"}`, `"profile" is required`},
		{"oauth without a profile", `{"protocol":"oauth"}`, `"profile" is required`},
		{"oauth with a null profile", `{"protocol":"oauth","profile":null}`, `"profile" must be an object`},
		{"oauth with a profile that is no object", `{"protocol":"oauth","profile":[]}`, `"profile" must be an object`},
		{"oauth without oauth", `{"protocol":"oauth","profile":{"id":"x"}}`, `"oauth" is required`},
		{"oauth with a null oauth", `{"protocol":"oauth","profile":{"oauth":null}}`, `"oauth" must be an object`},
		{"oauth with an oauth that is no object", `{"protocol":"oauth","profile":{"oauth":"https://idp.test"}}`, `"oauth" must be an object`},
		{"oauth naming an issuer", `{"protocol":"oauth","profile":{"oauth":{},"issuerId":"i"}}`,
			`"issuerId" is not allowed with "protocol": "oauth": the access token given at enrollment names the identity`},
		{"oauth naming a subject", `{"protocol":"oauth","profile":{"oauth":{},"subject":"s"}}`,
			`"subject" is not allowed with "protocol": "oauth": the access token given at enrollment names the identity`},
		{"oauth with a legacy field", `{"protocol":"oauth","profile":{"oauth":{}},"functionId":"f"}`, `"functionId" is not allowed with "protocol"`},
		{"a profile without a protocol", `{"profile":{"oauth":{}}}`, `"profile" is only allowed with "protocol": "pki" or "oauth"`},
		{"an oversized profile", `{"protocol":"oauth","profile":{"oauth":{"x":"` + strings.Repeat("a", maxProfileSize) + `"}}}`,
			fmt.Sprintf(`"profile" must be at most %d bytes of JSON`, maxProfileSize)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.storeDump()
			r := e.do("POST", path, e.rootTk, tc.body)
			if r.status != 400 || r.message() != tc.msg {
				t.Fatalf("%d %s\nwant 400 %q", r.status, r.body, tc.msg)
			}
			if r.header.Get(RevisionHeader) != "" {
				t.Fatalf("a refusal carries %s", RevisionHeader)
			}
			if !maps.Equal(before, e.storeDump()) {
				t.Fatal("a refused mint changed the store")
			}
		})
	}
}

// TestOAuthInitEnroll: an oauth init token adds the identity of a
// verified access token to its agent, once; every refusal, at the wire
// with its exact message, leaves the store as it was.
func TestOAuthInitEnroll(t *testing.T) {
	e := newEnv(t)
	acc := "/v1/account/" + testAcc
	res := "/account/" + testAcc + "/"
	usr, _ := e.agent("user", "u1", perm("function:get", res))
	e.agent("client", "taken")
	idpKey := signer(t).(*ecdsa.PrivateKey)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherPEM, _ := sdk.PublicKeyPEM(otherKey.Public())
	now := e.clock.Now()
	access := e.accessToken(idpKey, "k1", idpIssuer, "alice@idp", e.srv.URL, now)

	// A clash of identities reads as it does on any other route.
	clash := e.do("POST", acc+"/user", e.rootTk, `{"identities":[{"issuerId":"`+idpIssuer+`","subject":"taken"}]}`)
	if clash.status != 400 || !strings.Contains(clash.message(), "taken") {
		t.Fatalf("the clash on POST: %d %s", clash.status, clash.body)
	}

	oauthTok := e.mint("user", usr, `{"protocol":"oauth","profile":{"oauth":`+oauthSettings+`}}`)
	pkiTok := e.mint("user", usr, `{"protocol":"pki","profile":{}}`)
	legacyTok := e.mint("user", usr, `{"functionId":"f"}`)
	oauthBody := func(tok string) string { return fmt.Sprintf(`{"protocol":"oauth","accessToken":%q}`, tok) }
	const unauthorized = "Unauthorized"
	tests := []struct {
		name, token, body string
		status            int
		msg               string
	}{
		// The protocol.
		{"an unknown protocol", oauthTok, `{"protocol":"saml","accessToken":"x"}`, 400, `"protocol" must be one of [pki, oauth]`},
		{"an unknown protocol with a pki token", pkiTok, `{"protocol":"ldap"}`, 400, `"protocol" must be one of [pki, oauth]`},
		{"a pki body for an oauth token", oauthTok, fmt.Sprintf(`{"protocol":"pki","accessToken":%q,"publicKey":%q}`, access, otherPEM), 400,
			`"protocol" must be "oauth" for this init token`},
		{"a legacy body for an oauth token", oauthTok, fmt.Sprintf(`{"publicKey":%q,"keyId":"k"}`, otherPEM), 400, `"protocol" must be "oauth" for this init token`},
		{"an oauth body for a pki token", pkiTok, oauthBody(access), 400, `"protocol" must be "pki" for this init token`},
		{"an oauth body for a legacy token", legacyTok, oauthBody(access), 400, `"protocol" must be "pki" for this init token`},
		// The legacy form is {publicKey, keyId} together.
		{"keyId alone", pkiTok, `{"keyId":"k"}`, 400, `"protocol" is required`},
		{"publicKey alone", pkiTok, fmt.Sprintf(`{"publicKey":%q}`, otherPEM), 400, `"protocol" is required`},
		{"publicKey alone with a legacy token", legacyTok, fmt.Sprintf(`{"publicKey":%q}`, otherPEM), 400, `"protocol" is required`},
		{"an empty body", pkiTok, `{}`, 400, `"protocol" is required`},
		// The oauth body.
		{"no access token", oauthTok, `{"protocol":"oauth"}`, 400, `"accessToken" is required`},
		{"an empty access token", oauthTok, `{"protocol":"oauth","accessToken":""}`, 400, `"accessToken" is not allowed to be empty`},
		{"a public key", oauthTok, fmt.Sprintf(`{"protocol":"oauth","accessToken":%q,"publicKey":%q}`, access, otherPEM), 400,
			`"publicKey" is not allowed with "protocol": "oauth": the access token names the identity`},
		{"a key id", oauthTok, fmt.Sprintf(`{"protocol":"oauth","accessToken":%q,"keyId":"k"}`, access), 400,
			`"keyId" is not allowed with "protocol": "oauth": the access token names the identity`},
		// The access token must verify at an issuer of the account.
		{"an access token that is no JWT", oauthTok, oauthBody("nope"), 403, unauthorized},
		{"an access token signed by another key", oauthTok, oauthBody(e.accessToken(otherKey, "k1", idpIssuer, "alice@idp", e.srv.URL, now)), 403, unauthorized},
		{"an access token of an unknown key id", oauthTok, oauthBody(e.accessToken(idpKey, "k2", idpIssuer, "alice@idp", e.srv.URL, now)), 403, unauthorized},
		{"an access token of an unregistered issuer", oauthTok, oauthBody(e.accessToken(idpKey, "k1", "https://unknown.test", "alice@idp", e.srv.URL, now)), 403, unauthorized},
		{"an expired access token", oauthTok, oauthBody(e.accessToken(idpKey, "k1", idpIssuer, "alice@idp", e.srv.URL, now.Add(-2*time.Hour))), 403, unauthorized},
		{"an access token for another audience", oauthTok, oauthBody(e.accessToken(idpKey, "k1", idpIssuer, "alice@idp", "https://elsewhere.test", now)), 403, unauthorized},
		{"the init token as access token", oauthTok, oauthBody(oauthTok), 403, unauthorized},
		// The identity must be free.
		{"an identity of another agent", oauthTok, oauthBody(e.accessToken(idpKey, "k1", idpIssuer, "taken", e.srv.URL, now)), 400, clash.message()},
		{"an identity the agent has", oauthTok, oauthBody(e.accessToken(idpKey, "k1", idpIssuer, "u1", e.srv.URL, now)), 400,
			"The user '" + usr + "' already has the identity with issuerId 'https://idp.test' and subject 'u1'"},
		// The init token.
		{"an agent token as init token", e.rootTk, oauthBody(access), 403, unauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.storeDump()
			r := e.do("POST", acc+"/init", tc.token, tc.body)
			if r.status != tc.status || r.message() != tc.msg {
				t.Fatalf("%d %s\nwant %d %q", r.status, r.body, tc.status, tc.msg)
			}
			if !maps.Equal(before, e.storeDump()) {
				t.Fatal("a refused enrollment changed the store")
			}
		})
	}

	// The access token's identity is added; nothing else changes but the
	// agent, the identity's claim and the spent token.
	before := e.storeDump()
	r := e.do("POST", acc+"/init", oauthTok, oauthBody(access))
	if r.status != 200 {
		t.Fatalf("enroll: %d %s", r.status, r.body)
	}
	rev := r.revision(t)
	var u model.User
	r.json(t, &u)
	want := model.Identity{IssuerID: idpIssuer, Subject: "alice@idp"}
	if u.ID != usr || len(u.Identities) != 2 || u.Identities[1] != want {
		t.Fatalf("enrolled: %s", r.body)
	}
	after := e.storeDump()
	initKey := e.layout.Init(testAcc, initClaims(t, oauthTok)["jti"].(string))
	changed := map[string]bool{}
	for k, v := range after {
		if before[k] != v {
			changed[k] = true
		}
	}
	wantChanged := map[string]bool{e.layout.Agent(testAcc, usr): true, e.layout.Identity(testAcc, idpIssuer, "alice@idp"): true, initKey: true}
	if len(after) != len(before)+1 || !maps.Equal(changed, wantChanged) {
		t.Fatalf("changed %v, want %v (no issuer is registered)", changed, wantChanged)
	}
	if rec := e.initRecord(oauthTok); !rec.Consumed {
		t.Fatalf("the token is not consumed: %+v", rec)
	}
	// The access token now acts as the agent, at the write's revision.
	d := e.eng.Check(t.Context(), access, "function:get", res+"f")
	if !d.Allow || d.Agent.ID != usr || d.Revision < rev {
		t.Fatalf("check with the access token: %+v", d)
	}
	// A second use is 404, with another access token too.
	for _, a := range []string{access, e.accessToken(idpKey, "k1", idpIssuer, "bob@idp", e.srv.URL, now)} {
		if r := e.do("POST", acc+"/init", oauthTok, oauthBody(a)); r.status != 404 || r.message() != "The init token has already been used" {
			t.Fatalf("a second use: %d %s", r.status, r.body)
		}
	}

	// An expired oauth init token is 403, even with a fresh access token.
	late := e.mint("user", usr, `{"protocol":"oauth","profile":{"oauth":{}}}`)
	e.clock.Add(8*time.Hour + time.Second)
	before = e.storeDump()
	fresh := e.accessToken(idpKey, "k1", idpIssuer, "carol@idp", e.srv.URL, e.clock.Now())
	if r := e.do("POST", acc+"/init", late, oauthBody(fresh)); r.status != 403 || r.message() != unauthorized {
		t.Fatalf("an expired init token: %d %s", r.status, r.body)
	}
	if !maps.Equal(before, e.storeDump()) {
		t.Fatal("a refused enrollment changed the store")
	}
}

// TestOAuthInitGuard: an oauth init token minted while its target was weak
// adds no identity once the target holds more than the minter covered.
func TestOAuthInitGuard(t *testing.T) {
	e := newEnv(t)
	acc := "/v1/account/" + testAcc
	res := "/account/" + testAcc + "/"
	target, _ := e.agent("client", "target", perm("function:get", res))
	_, minterTk := e.agent("client", "minter", perm("client:init", res), perm("function:*", res))
	r := e.must("POST", acc+"/client/"+target+"/init", minterTk, `{"protocol":"oauth","profile":{"oauth":{}}}`)
	var tok string
	r.json(t, &tok)
	body := fmt.Sprintf(`{"protocol":"oauth","accessToken":%q}`, e.token(idpIssuer, "new-identity", nil))
	e.must("PATCH", acc+"/client/"+target, e.rootTk, `{"access":{"allow":[{"action":"*","resource":"/"}]}}`)
	before := e.storeDump()
	want := "Unauthorized: the client '" + target + "' was granted the action '*' on resource '/' after this init token was issued; ask for a new one"
	if r := e.do("POST", acc+"/init", tok, body); r.status != 403 || r.message() != want {
		t.Fatalf("enrolling into a promoted agent: %d %s", r.status, r.body)
	}
	if !maps.Equal(before, e.storeDump()) {
		t.Fatal("the refused enrollment changed the store")
	}
	// Narrowing the grants again leaves the token usable.
	e.must("PATCH", acc+"/client/"+target, e.rootTk, `{"access":{"allow":[{"action":"function:get","resource":"`+res+`"}]}}`)
	if r := e.do("POST", acc+"/init", tok, body); r.status != 200 || !strings.Contains(r.body, `"subject":"new-identity"`) {
		t.Fatalf("enrolling after narrowing: %d %s", r.status, r.body)
	}
}
