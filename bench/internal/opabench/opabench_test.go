package opabench

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
	"github.com/wardenauthz/warden/sidecar"
	"github.com/wardenauthz/warden/sidecar/state"
)

const (
	acc      = "acc-00000000000000aa"
	otherAcc = "acc-00000000000000bb"
	iss      = "https://issuer.test"
	ecIss    = "https://ec.issuer.test"
	aud      = "http://warden.test"
)

// fixture is one model given to both sides, and the keys that sign tokens.
type fixture struct {
	model       Model
	rsaKey      *rsa.PrivateKey
	forgedKey   *rsa.PrivateKey // same kid, not the issuer's key
	ecKey       *ecdsa.PrivateKey
	engine      *sidecar.Engine
	opaAllow    rego.PreparedEvalQuery
	opaDecision rego.PreparedEvalQuery
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{}
	var err error
	if f.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if f.forgedKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if f.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	pemOf := func(k crypto.Signer) string {
		s, err := sdk.PublicKeyPEM(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	user := func(id, sub string, grants ...model.Permission) model.Agent {
		return model.Agent{ID: id, Type: model.AgentUser, Account: acc,
			Identities: []model.Identity{{IssuerID: iss, Subject: sub}}, Grants: model.NormalizePermissions(grants)}
	}
	p := func(action, resource string) model.Permission {
		return model.Permission{Action: action, Resource: resource}
	}
	ecUser := user("usr-00000000000000e1", "ec-alice", p("function:get", "/account/"+acc+"/"))
	ecUser.Identities = []model.Identity{{IssuerID: ecIss, Subject: "ec-alice"}}
	f.model = Model{
		Account:   acc,
		Audiences: []string{aud},
		Issuers: []model.Issuer{
			{ID: iss, PublicKeys: []model.PublicKey{{KeyID: "rsa-1", PublicKey: pemOf(f.rsaKey)}}},
			{ID: ecIss, PublicKeys: []model.PublicKey{{KeyID: "ec-1", PublicKey: pemOf(f.ecKey)}}},
		},
		Agents: []model.Agent{
			user("usr-0000000000000001", "alice",
				p("function:op0", "/account/"+acc+"/subscription/s1/"),
				p("function:*", "/account/"+acc+"/subscription/s1/")),
			user("usr-0000000000000002", "bob", p("*", "/")),
			user("usr-0000000000000003", "carol", p("function:get", "/account/"+acc+"/a")),
			user("usr-0000000000000004", "dave", p("a::*", "/"), p("a:b:c", "/"), p("x:*", "/")),
			ecUser,
		},
	}
	st := state.New()
	b := &state.Batch{Revision: 1}
	b.PutAccount(acc)
	b.PutAccount(otherAcc)
	for _, i := range f.model.Issuers {
		b.PutIssuer(acc, i)
	}
	for _, a := range f.model.Agents {
		b.PutAgent(a)
	}
	if _, err := st.Apply(b); err != nil {
		t.Fatal(err)
	}
	if f.engine, err = sidecar.New(st, sidecar.Config{DefaultAccount: acc, Audiences: []string{aud}}, sidecar.Deps{}); err != nil {
		t.Fatal(err)
	}
	data, err := f.model.Data()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if f.opaAllow, err = Prepare(ctx, QueryAllow, data); err != nil {
		t.Fatal(err)
	}
	if f.opaDecision, err = Prepare(ctx, QueryDecision, data); err != nil {
		t.Fatal(err)
	}
	return f
}

// tok describes a token to sign; zero fields take defaults.
type tok struct {
	key     crypto.Signer
	method  jwt.SigningMethod
	kid     string
	claims  jwt.MapClaims
	noClaim []string // default claims to leave out
}

func (f *fixture) sign(t *testing.T, sub string, o tok) string {
	t.Helper()
	claims := jwt.MapClaims{"iss": iss, "sub": sub, "aud": aud, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for _, k := range o.noClaim {
		delete(claims, k)
	}
	for k, v := range o.claims {
		claims[k] = v
	}
	if o.key == nil {
		o.key = f.rsaKey
	}
	if o.method == nil {
		o.method = jwt.SigningMethodRS256
	}
	if o.kid == "" {
		o.kid = "rsa-1"
	}
	tk := jwt.NewWithClaims(o.method, claims)
	tk.Header["kid"] = o.kid
	var key any = o.key
	if o.method == jwt.SigningMethodHS256 {
		key = []byte("a shared secret of thirty-two bytes!")
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPolicyMatchesWarden: OPA's decision with policy.rego equals Warden's
// (sidecar.Engine.Check) over the same model, for allowed and denied checks
// of every kind; the status (200, 401, 403) too. Each check is asked twice of
// each side, so that Warden's token cache and OPA's io_jwt cache answer the
// second time.
func TestPolicyMatchesWarden(t *testing.T) {
	f := newFixture(t)
	res := func(rest string) string { return "/account/" + acc + "/" + rest }
	inline := func(perms ...any) tok {
		return tok{claims: jwt.MapClaims{sdk.PermissionsClaim: map[string]any{"allow": perms}}}
	}
	perm := func(a, r string) map[string]any { return map[string]any{"action": a, "resource": r} }
	cases := []struct {
		name             string
		sub              string
		tok              tok
		rawToken         string // instead of signing one
		action, resource string
		status           int
	}{
		{name: "allowed", sub: "alice", action: "function:get", resource: res("subscription/s1/fn/x"), status: 200},
		{name: "allowed by the exact grant", sub: "alice", action: "function:op0", resource: res("subscription/s1/"), status: 200},
		{name: "wrong action", sub: "alice", action: "user:get", resource: res("subscription/s1/"), status: 403},
		{name: "wildcard segment needs a segment", sub: "alice", action: "function", resource: res("subscription/s1/"), status: 403},
		{name: "resource outside the grant", sub: "alice", action: "function:get", resource: res("subscription/s2/"), status: 403},
		{name: "star on root allows anything", sub: "bob", action: "anything:at:all", resource: res("x/y"), status: 200},
		{name: "star on root, another account's resource", sub: "bob", action: "function:get", resource: "/account/" + otherAcc + "/x", status: 401},
		{name: "star on root, no account in the resource", sub: "bob", action: "function:get", resource: "/elsewhere", status: 200},
		{name: "prefix: the granted resource itself", sub: "carol", action: "function:get", resource: res("a"), status: 200},
		{name: "prefix: under it", sub: "carol", action: "function:get", resource: res("a/x/"), status: 200},
		{name: "prefix: a longer sibling", sub: "carol", action: "function:get", resource: res("ab"), status: 403},
		{name: "prefix: a longer sibling, with slash", sub: "carol", action: "function:get", resource: res("ab/"), status: 403},
		{name: "prefix: no leading slash", sub: "carol", action: "function:get", resource: "account/" + acc + "/a/b", status: 200},
		{name: "empty granted segment denies", sub: "dave", action: "a:x:b", resource: "/", status: 403},
		{name: "longer grant does not match", sub: "dave", action: "a:b", resource: "/", status: 403},
		{name: "exact three segments", sub: "dave", action: "a:b:c", resource: "/", status: 200},
		{name: "star after an equal segment", sub: "dave", action: "x:y:z", resource: "/", status: 200},
		{name: "star needs a requested segment", sub: "dave", action: "x", resource: "/", status: 403},
		{name: "unknown subject", sub: "mallory", action: "function:get", resource: res("subscription/s1/"), status: 403},
		{name: "bad signature", sub: "alice", tok: tok{key: nil}, rawToken: "forged", action: "function:get", resource: res("subscription/s1/"), status: 401},
		{name: "expired", sub: "alice", tok: tok{claims: jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix()}}, action: "function:get", resource: res("subscription/s1/"), status: 401},
		{name: "not valid yet", sub: "alice", tok: tok{claims: jwt.MapClaims{"nbf": time.Now().Add(time.Hour).Unix()}}, action: "function:get", resource: res("subscription/s1/"), status: 401},
		{name: "no exp", sub: "alice", tok: tok{noClaim: []string{"exp"}}, action: "function:get", resource: res("subscription/s1/"), status: 401},
		{name: "no sub", sub: "", tok: tok{noClaim: []string{"sub"}}, action: "function:get", resource: res("subscription/s1/"), status: 401},
		{name: "wrong audience", sub: "alice", tok: tok{claims: jwt.MapClaims{"aud": "http://elsewhere"}}, action: "function:get", resource: res("subscription/s1/"), status: 401},
		{name: "audience in an array", sub: "alice", tok: tok{claims: jwt.MapClaims{"aud": []string{"http://elsewhere", aud}}}, action: "function:get", resource: res("subscription/s1/"), status: 200},
		{name: "no audience", sub: "alice", tok: tok{noClaim: []string{"aud"}}, action: "function:get", resource: res("subscription/s1/"), status: 401},
		{name: "unknown issuer", sub: "alice", tok: tok{claims: jwt.MapClaims{"iss": "https://nobody"}}, action: "function:get", resource: res("subscription/s1/"), status: 401},
		{name: "unknown kid", sub: "alice", tok: tok{kid: "rsa-2"}, action: "function:get", resource: res("subscription/s1/"), status: 401},
		{name: "HMAC refused", sub: "alice", tok: tok{method: jwt.SigningMethodHS256}, action: "function:get", resource: res("subscription/s1/"), status: 401},
		{name: "PS256 with the RSA key", sub: "alice", tok: tok{method: jwt.SigningMethodPS256}, action: "function:get", resource: res("subscription/s1/"), status: 200},
		{name: "ES256 issuer", sub: "ec-alice", tok: tok{key: nil, kid: "ec-1", method: jwt.SigningMethodES256, claims: jwt.MapClaims{"iss": ecIss}}, action: "function:get", resource: res("x"), status: 200},
		{name: "malformed token", rawToken: "not.a.token", action: "function:get", resource: res("x"), status: 401},
		{name: "no token", rawToken: "none", action: "function:get", resource: res("x"), status: 401},
		{name: "token over 16 KiB", sub: "alice", tok: tok{claims: jwt.MapClaims{"pad": strings.Repeat("x", 16<<10)}}, action: "function:get", resource: res("subscription/s1/"), status: 401},
		{name: "inline narrower, allowed", sub: "alice", tok: inline(perm("function:get", res("subscription/s1/fn"))), action: "function:get", resource: res("subscription/s1/fn/x"), status: 200},
		{name: "inline narrower, outside it", sub: "alice", tok: inline(perm("function:get", res("subscription/s1/fn"))), action: "function:put", resource: res("subscription/s1/fn/x"), status: 403},
		{name: "inline not covered", sub: "alice", tok: inline(perm("user:get", res("subscription/s1/"))), action: "function:get", resource: res("subscription/s1/"), status: 403},
		{name: "inline entry without resource", sub: "alice", tok: inline(map[string]any{"action": "function:get"}), action: "function:get", resource: res("subscription/s1/"), status: 403},
		{name: "inline claim without allow", sub: "alice", tok: tok{claims: jwt.MapClaims{sdk.PermissionsClaim: map[string]any{}}}, action: "function:get", resource: res("subscription/s1/"), status: 403},
		{name: "inline claim not an object", sub: "alice", tok: tok{claims: jwt.MapClaims{sdk.PermissionsClaim: "all"}}, action: "function:get", resource: res("subscription/s1/"), status: 403},
	}
	ctx := context.Background()
	jwtCache, err := NewJWTCache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			token := c.rawToken
			switch token {
			case "":
				if c.tok.key == nil && c.tok.kid == "ec-1" {
					c.tok.key = f.ecKey
				}
				token = f.sign(t, c.sub, c.tok)
			case "forged":
				c.tok.key = f.forgedKey
				token = f.sign(t, c.sub, c.tok)
			case "none":
				token = ""
			}
			for round := range 2 {
				d := f.engine.Check(ctx, token, c.action, c.resource)
				if d.Status != c.status {
					t.Fatalf("round %d: Warden: status %d (%s), want %d", round, d.Status, d.Reason, c.status)
				}
				for _, jc := range []struct {
					name string
					opts []rego.EvalOption
				}{{"no cache", nil}, {"io_jwt cache", []rego.EvalOption{rego.EvalInterQueryBuiltinValueCache(jwtCache)}}} {
					rs, err := f.opaDecision.Eval(ctx, append(jc.opts, rego.EvalInput(Input(token, c.action, c.resource)))...)
					if err != nil {
						t.Fatal(err)
					}
					got := rs[0].Expressions[0].Value.(map[string]any)
					if got["allow"] != d.Allow || got["status"] != jsonNumber(d.Status) {
						t.Fatalf("round %d, %s: OPA decided %v, Warden allow=%v status=%d (%s)", round, jc.name, got, d.Allow, d.Status, d.Reason)
					}
				}
				allow, err := Allowed(ctx, f.opaAllow, jwtCache, token, c.action, c.resource)
				if err != nil {
					t.Fatal(err)
				}
				if allow != d.Allow {
					t.Fatalf("round %d: OPA's allow query: %v, Warden: %v", round, allow, d.Allow)
				}
			}
		})
	}
}

// jsonNumber is how OPA returns a number in a result.
func jsonNumber(n int) any {
	return json.Number(strconv.Itoa(n))
}

// TestMatchingRules compares the policy's action and resource rules with
// Warden's (sdk/model) over pairs that probe every branch. (The policy
// compares a normalized requested resource with grants stored normalized.)
func TestMatchingRules(t *testing.T) {
	ctx := context.Background()
	actions, err := rego.New(rego.Query("data.warden.segments_match(input.g, input.r)"), rego.Module("policy.rego", Policy)).PrepareForEval(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resources, err := rego.New(rego.Query("startswith(data.warden.normalize(input.r), data.warden.normalize(input.g))"),
		rego.Module("policy.rego", Policy)).PrepareForEval(ctx)
	if err != nil {
		t.Fatal(err)
	}
	holds := func(pq rego.PreparedEvalQuery, g, r string) bool {
		rs, err := pq.Eval(ctx, rego.EvalInput(map[string]any{"g": g, "r": r}))
		if err != nil {
			t.Fatal(err)
		}
		return rs.Allowed()
	}
	segs := []string{"", "*", "a", "b", "a:b", "a:*", "a:b:c", "a:b:*", "a::b", "a::*", ":a", "*:a", "a:", "A", "a:B", "ab", "a:bc"}
	for _, g := range segs {
		for _, r := range segs {
			if got, want := holds(actions, g, r), model.ActionMatches(g, r); got != want {
				t.Errorf("action granted %q requested %q: policy %v, Warden %v", g, r, got, want)
			}
		}
	}
	paths := []string{"", "/", "a", "/a", "a/", "/a/", "/ab", "/a/b", "a/b/", "//a", "/a//", "/A", "/a/b/c"}
	for _, g := range paths {
		for _, r := range paths {
			if got, want := holds(resources, g, r), model.ResourceCovers(g, r); got != want {
				t.Errorf("resource granted %q requested %q: policy %v, Warden %v", g, r, got, want)
			}
		}
	}
}
