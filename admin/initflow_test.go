package admin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wardenauthz/warden/internal/httpkit"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func TestIssuers(t *testing.T) {
	e := newEnv(t)
	acc := "/v1/account/" + testAcc
	pemText := strings.TrimSpace(mustPEM(t))
	path := acc + "/issuer/" + url.PathEscape("https://other.test/a b")
	r := e.must("POST", path, e.rootTk, fmt.Sprintf(`{"displayName":"Other","publicKeys":[{"keyId":"a","publicKey":%q}]}`, pemText))
	r.revision(t)
	var iss model.Issuer
	r.json(t, &iss)
	if iss.ID != "https://other.test/a b" || iss.DisplayName != "Other" || len(iss.PublicKeys) != 1 {
		t.Fatalf("add: %s", r.body)
	}
	// Setting a key URL removes the keys.
	r = e.must("PATCH", path, e.rootTk, `{"jsonKeysUrl":"https://other.test/jwks"}`)
	if r.body != `{"id":"https://other.test/a b","displayName":"Other","jsonKeysUrl":"https://other.test/jwks"}`+"\n" {
		t.Fatalf("patch: %s", r.body)
	}
	if got := e.must("GET", path, e.rootTk, "").body; got != r.body {
		t.Fatalf("get: %s", got)
	}
	// Clearing the only key source is refused.
	if r := e.do("PATCH", path, e.rootTk, `{"jsonKeysUrl":null}`); r.status != 400 || !strings.Contains(r.message(), "must have at least one public key or a json keys URL") {
		t.Fatalf("clearing: %d %s", r.status, r.body)
	}
	var l struct {
		Items []model.Issuer
		Next  string
	}
	e.must("GET", acc+"/issuer", e.rootTk, "").json(t, &l)
	if len(l.Items) != 3 || l.Next != "" {
		t.Fatalf("list: %+v", l)
	}
	e.must("GET", acc+"/issuer?count=1", e.rootTk, "").json(t, &l)
	if len(l.Items) != 1 || l.Items[0].PublicKeys == nil && l.Items[0].JSONKeysURL == "" || l.Next == "" {
		t.Fatalf("issuers are listed whole and paged: %+v", l)
	}
	// Authorization is on the escaped path: a grant on the issuer list's
	// resource covers every issuer under it.
	_, readerTk := e.agent("client", "reader", perm("issuer:get", "/account/"+testAcc+"/issuer/"))
	if r := e.do("GET", path, readerTk, ""); r.status != 200 {
		t.Fatalf("reader: %d %s", r.status, r.body)
	}
	_, narrowTk := e.agent("client", "narrow", perm("issuer:get", "/account/"+testAcc+"/issuer/"+url.PathEscape(idpIssuer)))
	if r := e.do("GET", path, narrowTk, ""); r.status != 403 {
		t.Fatalf("a grant on another issuer: %d %s", r.status, r.body)
	}
	r = e.do("DELETE", path, e.rootTk, "")
	if r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	r.revision(t)
	if r := e.do("GET", path, e.rootTk, ""); r.status != 404 || !strings.Contains(r.body, "The issuer 'https://other.test/a b' is not associated with the account") {
		t.Fatalf("after delete: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", path, e.rootTk, ""); r.status != 404 {
		t.Fatalf("delete again: %d", r.status)
	}
}

// initClaims decodes an init token's claims without verifying it.
func initClaims(t *testing.T, tok string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) mint(kind, id, body string) string {
	e.t.Helper()
	r := e.must("POST", "/v1/account/"+testAcc+"/"+kind+"/"+id+"/init", e.rootTk, body)
	r.revision(e.t)
	var tok string
	r.json(e.t, &tok)
	return tok
}

func TestInitFlow(t *testing.T) {
	e := newEnv(t)
	acc := "/v1/account/" + testAcc
	res := "/account/" + testAcc + "/"
	usr, _ := e.agent("user", "u1", perm("function:get", res))
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	newPEM, _ := sdk.PublicKeyPEM(newKey.Public())
	host := strings.TrimPrefix(e.srv.URL, "http://")

	// The pki protocol: the profile carries the new identity.
	tok := e.mint("user", usr, `{"protocol":"pki","profile":{"id":"dev","subscription":"sub-0000000000000001"}}`)
	c := initClaims(t, tok)
	profile, _ := c["profile"].(map[string]any)
	issuerID, _ := profile["issuerId"].(string)
	subject, _ := profile["subject"].(string)
	if c["protocol"] != "pki" || c["agentId"] != usr || c["iss"] != e.srv.URL || c["aud"] != e.srv.URL || profile["id"] != "dev" ||
		profile["account"] != testAcc || profile["baseUrl"] != e.srv.URL || !strings.HasSuffix(issuerID, "."+usr+"."+host) ||
		!strings.HasPrefix(subject, "cli-") || len(subject) != 12 {
		t.Fatalf("claims: %v", c)
	}
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 8*3600 {
		t.Fatalf("valid for %vs", exp-iat)
	}
	access := func(iss, sub string) string {
		s, err := sdk.MintToken(sdk.TokenSpec{PrivateKey: newKey, KeyID: "laptop", Issuer: iss, Subject: sub, Audience: e.srv.URL, Now: e.clock.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	enroll := func(tok, body string) response { return e.do("POST", acc+"/init", tok, body) }
	pki := func(accessToken string) string {
		return fmt.Sprintf(`{"protocol":"pki","accessToken":%q,"publicKey":%q}`, accessToken, newPEM)
	}
	before := e.storeDump()
	// An access token for another identity, or signed by another key, is
	// refused and changes nothing.
	if r := enroll(tok, pki(access(issuerID, "cli-00000000"))); r.status != 403 || !strings.Contains(r.body, "Unauthorized") {
		t.Fatalf("mismatched subject: %d %s", r.status, r.body)
	}
	wrongKey, _ := sdk.MintToken(sdk.TokenSpec{PrivateKey: signer(t), KeyID: "laptop", Issuer: issuerID, Subject: subject, Audience: e.srv.URL, Now: e.clock.Now()})
	if r := enroll(tok, pki(wrongKey)); r.status != 403 {
		t.Fatalf("signed by another key: %d %s", r.status, r.body)
	}
	if r := enroll(tok, `{"protocol":"pki","publicKey":"x"}`); r.status != 400 || !strings.Contains(r.message(), `"accessToken" is required`) || !strings.Contains(r.message(), `"publicKey" is not a valid public key`) {
		t.Fatalf("bad body: %d %s", r.status, r.body)
	}
	// A null proof of possession is no proof.
	if r := enroll(tok, fmt.Sprintf(`{"protocol":"pki","accessToken":null,"publicKey":%q}`, newPEM)); r.status != 400 || !strings.Contains(r.message(), `"accessToken" must be a string`) {
		t.Fatalf("null access token: %d %s", r.status, r.body)
	}
	if len(e.storeDump()) != len(before) {
		t.Fatal("a refused enrollment changed the store")
	}
	r := enroll(tok, pki(access(issuerID, subject)))
	if r.status != 200 {
		t.Fatalf("enroll: %d %s", r.status, r.body)
	}
	rev := r.revision(t)
	var u model.User
	r.json(t, &u)
	if u.ID != usr || len(u.Identities) != 2 || u.Identities[1] != (model.Identity{IssuerID: issuerID, Subject: subject}) {
		t.Fatalf("enrolled: %s", r.body)
	}
	// The enrolled key now signs tokens that check, at the write's revision.
	d := e.eng.Check(t.Context(), access(issuerID, subject), "function:get", res+"f")
	if !d.Allow || d.Agent.ID != usr || d.Revision < rev {
		t.Fatalf("check with the enrolled key: %+v", d)
	}
	var iss model.Issuer
	e.must("GET", acc+"/issuer/"+url.PathEscape(issuerID), e.rootTk, "").json(t, &iss)
	if len(iss.PublicKeys) != 1 || iss.PublicKeys[0].KeyID != "laptop" {
		t.Fatalf("registered issuer: %+v", iss)
	}
	// A replay is 404.
	if r := enroll(tok, pki(access(issuerID, subject))); r.status != 404 || !strings.Contains(r.body, "already been used") {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}

	// The legacy body: flat claims and {publicKey, keyId}.
	cl, _ := e.agent("client", "c1")
	tok = e.mint("client", cl, `{"subscriptionId":"sub-0000000000000001","functionId":"f"}`)
	c = initClaims(t, tok)
	if c["accountId"] != testAcc || c["subscriptionId"] != "sub-0000000000000001" || c["functionId"] != "f" || c["baseUrl"] != e.srv.URL || c["protocol"] != nil {
		t.Fatalf("legacy claims: %v", c)
	}
	legacy := fmt.Sprintf(`{"publicKey":%q,"keyId":"k9"}`, newPEM)
	r = enroll(tok, legacy)
	if r.status != 200 {
		t.Fatalf("legacy enroll: %d %s", r.status, r.body)
	}
	var cr model.Client
	r.json(t, &cr)
	if cr.ID != cl || len(cr.Identities) != 2 || cr.Identities[1].IssuerID != c["issuerId"] {
		t.Fatalf("legacy enrolled: %s", r.body)
	}

	// Forged, expired and other-account tokens are 403; none is consumed.
	tok = e.mint("client", cl, `{}`)
	forged := func(edit func(jwt.MapClaims), secret []byte) string {
		claims := initClaims(t, tok)
		edit(claims)
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
		return s
	}
	tests := []struct{ name, token, path string }{
		{"forged signature", forged(func(jwt.MapClaims) {}, []byte("guess")), acc + "/init"},
		{"unknown jti", forged(func(c jwt.MapClaims) { c["jti"] = strings.Repeat("0", 32) }, []byte("guess")), acc + "/init"},
		{"alg none", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, initClaims(t, tok)).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}(), acc + "/init"},
		{"an agent token", e.rootTk, acc + "/init"},
		{"another account", tok, "/v1/account/" + otherAcc + "/init"},
		{"no token", "", acc + "/init"},
	}
	for _, tc := range tests {
		if r := e.do("POST", tc.path, tc.token, legacy); r.status != 403 || !strings.Contains(r.body, "Unauthorized") {
			t.Fatalf("%s: %d %s", tc.name, r.status, r.body)
		}
	}
	e.clock.Add(8*time.Hour + time.Second)
	if r := enroll(tok, legacy); r.status != 403 {
		t.Fatalf("expired: %d %s", r.status, r.body)
	}
}

// TestInitClaimsAreJSONString: the mint route answers a JSON string, as
// Fusebit's.
func TestInitAnswerIsAJSONString(t *testing.T) {
	e := newEnv(t)
	u, _ := e.agent("user", "x")
	r := e.must("POST", "/v1/account/"+testAcc+"/user/"+u+"/init", e.rootTk, "")
	var s string
	if err := json.Unmarshal([]byte(r.body), &s); err != nil || strings.Count(s, ".") != 2 {
		t.Fatalf("answer %s", r.body)
	}
	// The write returns once this node's state is at its revision.
	if rev := r.revision(t); e.eng.State().Revision() < rev {
		t.Fatalf("answered at revision %d before the state reached it (%d)", rev, e.eng.State().Revision())
	}
}

// TestInitGuardAtEnrollment: an init token minted while its target was weak
// does not enroll a key once the target holds more than the minter covered.
func TestInitGuardAtEnrollment(t *testing.T) {
	e := newEnv(t)
	acc := "/v1/account/" + testAcc
	res := "/account/" + testAcc + "/"
	target, _ := e.agent("client", "target", perm("function:get", res))
	_, minterTk := e.agent("client", "minter", perm("client:init", res), perm("function:*", res))
	r := e.must("POST", acc+"/client/"+target+"/init", minterTk, `{}`)
	var tok string
	r.json(t, &tok)
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	newPEM, _ := sdk.PublicKeyPEM(newKey.Public())
	legacy := fmt.Sprintf(`{"publicKey":%q,"keyId":"k"}`, newPEM)
	// The target is promoted after minting.
	e.must("PATCH", acc+"/client/"+target, e.rootTk, `{"access":{"allow":[{"action":"*","resource":"/"}]}}`)
	before := e.storeDump()
	if r := e.do("POST", acc+"/init", tok, legacy); r.status != 403 || !strings.Contains(r.message(), "granted the action '*' on resource '/' after this init token was issued") {
		t.Fatalf("enrolling into a promoted agent: %d %s", r.status, r.body)
	}
	if len(e.storeDump()) != len(before) {
		t.Fatal("the refused enrollment changed the store")
	}
	// Narrowing or keeping the grants leaves the token usable.
	e.must("PATCH", acc+"/client/"+target, e.rootTk, `{"access":{"allow":[{"action":"function:get","resource":"`+res+`sub/"}]}}`)
	if r := e.do("POST", acc+"/init", tok, legacy); r.status != 200 {
		t.Fatalf("enrolling after narrowing: %d %s", r.status, r.body)
	}
}

// TestIdentityLimit: an agent holds at most maxIdentities identities, so
// replacing all of them fits one transaction, and enrollment respects it.
func TestIdentityLimit(t *testing.T) {
	e := newEnv(t)
	acc := "/v1/account/" + testAcc
	ids := func(prefix string, n int) string {
		var parts []string
		for i := range n {
			parts = append(parts, fmt.Sprintf(`{"issuerId":%q,"subject":"%s%d"}`, idpIssuer, prefix, i))
		}
		return `{"identities":[` + strings.Join(parts, ",") + `]}`
	}
	if r := e.do("POST", acc+"/client", e.rootTk, ids("a", maxIdentities+1)); r.status != 400 || !strings.Contains(r.message(), `"identities" must contain less than or equal to 50 items`) {
		t.Fatalf("too many identities: %d %s", r.status, r.body)
	}
	var c struct{ ID string }
	e.must("POST", acc+"/client", e.rootTk, ids("a", maxIdentities)).json(t, &c)
	e.must("PATCH", acc+"/client/"+c.ID, e.rootTk, ids("b", maxIdentities))
	tok := e.mint("client", c.ID, `{}`)
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	newPEM, _ := sdk.PublicKeyPEM(newKey.Public())
	if r := e.do("POST", acc+"/init", tok, fmt.Sprintf(`{"publicKey":%q,"keyId":"k"}`, newPEM)); r.status != 400 || !strings.Contains(r.message(), "already has 50 identities") {
		t.Fatalf("enrolling past the limit: %d %s", r.status, r.body)
	}
	e.must("DELETE", acc+"/client/"+c.ID, e.rootTk, "")
	// HTML characters are stored as sent, not escaped six times larger.
	r := e.must("POST", acc+"/user", e.rootTk, `{"firstName":"<a&b>"}`)
	var u struct{ ID string }
	r.json(t, &u)
	resp, err := etcdClient.Get(t.Context(), e.layout.Agent(testAcc, u.ID))
	if err != nil || !strings.Contains(string(resp.Kvs[0].Value), `"firstName":"<a&b>"`) {
		t.Fatalf("stored %s %v", resp.Kvs[0].Value, err)
	}
}

func TestRefusal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		status int
	}{
		{rpctypes.ErrTooManyOps, 413},
		{rpctypes.ErrRequestTooLarge, 413},
		{rpctypes.ErrNoSpace, 507},
		{context.DeadlineExceeded, 0},
		{rpctypes.ErrTimeout, 0},
	} {
		got := refusal(tc.err)
		var ae *httpkit.Error
		if tc.status == 0 && got != nil || tc.status != 0 && (!errors.As(got, &ae) || ae.Status != tc.status) {
			t.Fatalf("refusal(%v) = %v, want status %d", tc.err, got, tc.status)
		}
	}
}
